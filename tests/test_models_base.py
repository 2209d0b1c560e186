"""jmvae_tf/models/base.py: what every objective shares, its train step (reproducible seeds, the
optimiser's state made before the first step, a clear error for a missing modality, the loss
scaled for several replicas) and the seeds and tiling it gives its subclasses."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from model_batches import SEED, build, random_batch

from jmvae_tf.core import gaussian
from jmvae_tf.core.sampling import tile_batch
from jmvae_tf.models import registry


@pytest.mark.parametrize("name", [n for n in registry.model_names() if n != "jmvae_kl_gan"])
def test_sampling_is_reproducible_from_the_seed(name):
  model = build(name)
  batch = random_batch()
  a = model.loss_terms(batch, SEED)["loss"]
  b = model.loss_terms(batch, SEED)["loss"]
  c = model.loss_terms(batch, tf.constant([7, 12], tf.int64))["loss"]
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def test_step_seeds_are_the_model_seed_the_stream_and_the_step():
  """A function of checkpointed state only (the step counter), so a resumed run draws what an
  uninterrupted one would have."""
  model = build("jmvae", latent_dim=2, seed=3)
  counter = tf.Variable(5, dtype=tf.int64)
  np.testing.assert_array_equal(model.step_seed(counter, stream=0), [6, 5])
  np.testing.assert_array_equal(model.step_seed(counter, stream=1), [7, 5])
  counter.assign(6)
  np.testing.assert_array_equal(model.step_seed(counter, stream=1), [7, 6])


def test_tile_batch_is_sample_major():
  batch = random_batch(n=3)
  tiled = tile_batch(batch, 4)
  for name, value in batch.items():
    assert tiled[name].shape == (12,) + tuple(value.shape[1:])
    for s in range(4):  # row s * B + b is example b
      np.testing.assert_array_equal(tiled[name][3 * s : 3 * s + 3], value)


def _traces_of_the_first_fit(model, batch):
  """How many times Keras' training function is traced by a first fit call."""
  dataset = tf.data.Dataset.from_tensors(batch).repeat()
  model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0)
  return model.train_tf_function.experimental_get_tracing_count()


def test_optimizer_state_made_before_the_first_step_saves_a_trace():
  """Adam's moments made inside the first trace make tf.function trace the training
  function again (about 1.5 s of start-up for JMVAE-kl); build_optimizer_state makes
  them beforehand, the same variables the first step would have made."""
  batch = random_batch(n=4)
  counts = {}
  for built in (False, True):
    model = build("jmvae_kl", latent_dim=2)
    model.compile(keras.optimizers.legacy.Adam(1e-3), steps_per_execution=2)
    if built:
      model.build_optimizer_state()
      slots = {v.name: v.shape for v in model.optimizer.variables()}
      assert len(model.optimizer.variables()) == 2 * len(model.trainable_variables) + 1
    counts[built] = _traces_of_the_first_fit(model, batch)
    if built:  # the first step made no more variables
      assert {v.name: v.shape for v in model.optimizer.variables()} == slots
  assert counts == {False: 2, True: 1}


def test_missing_modality_in_batch_is_a_clear_error():
  model = build("jmvae")
  model.compile(keras.optimizers.Adam())
  with pytest.raises(ValueError, match="lacks modalities"):
    model.train_step({"image": tf.zeros([2, 28, 28, 1])})


def _weight_change_after_one_step(strategy, batch, jit):
  keras.utils.set_random_seed(0)
  with strategy.scope():
    model = build("jmvae_kl")
    model.compile(keras.optimizers.SGD(0.1), jit_compile=jit)
  before = [v.numpy() for v in model.trainable_variables]
  model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
  return [v.numpy() - b for v, b in zip(model.trainable_variables, before)]


def test_loss_is_scaled_for_two_replicas(monkeypatch):
  """One step on 2 replicas (4 examples each) equals one step on 1 device with all 8.

  Sampling is replaced by the mean so both runs compute the same function.
  """
  if len(tf.config.list_logical_devices("CPU")) < 2:
    pytest.skip("needs two logical CPU devices (set up in conftest before TF starts)")
  monkeypatch.setattr(gaussian, "sample", lambda mean, variance, seed: mean)
  batch = random_batch(8)
  one = _weight_change_after_one_step(tf.distribute.MirroredStrategy(["/cpu:0"]), batch, jit=False)
  two = _weight_change_after_one_step(
    tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), batch, jit=True
  )
  assert max(np.abs(a).max() for a in one) > 1e-3  # the step did something
  for a, b in zip(one, two):
    np.testing.assert_allclose(a, b, atol=2e-5)
