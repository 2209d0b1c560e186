"""The training driver on a slice of the real MNIST: loss falls, resume, checkpoints, summaries."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from model_configs import mnist_config

from jmvae_tf import (
  batchnorm,
  callbacks,
  config,
  files,
  options,
  run_dir,
  runtime,
  training,
)
from pipelines import mnist

BATCH = 100


def fit(model_dir, train_slice, test_slice, model_config, epochs, input_threads=0, **train_kw):
  kw = dict(
    epochs=epochs,
    batch_size=BATCH,
    warmup_epochs=0,
    eval_every=1,
    jit_compile=False,
    steps_per_execution=5,
  )
  kw.update(train_kw)
  train_config = options.TrainConfig.make(**kw)
  probe = next(iter(mnist.eval_dataset(test_slice.images[:100], test_slice.labels[:100], 100)))
  return training.train(
    model_config,
    train_config,
    str(model_dir),
    train_dataset_fn=lambda start: mnist.train_dataset(
      train_slice.images, train_slice.labels, BATCH, seed=0, start_epoch=start
    ),
    steps_per_epoch=mnist.steps_per_epoch(train_slice.num_examples, BATCH),
    eval_dataset=mnist.eval_dataset(test_slice.images, test_slice.labels, BATCH),
    probe_batch=probe,
    flags_text="--model=test\n",
    verbose=0,
    input_threads=input_threads,
  )


@pytest.mark.parametrize(
  "name, extra",
  [
    ("jmvae", {}),
    ("jmvae_kl", {}),
    ("hierarchical_jmvae", {}),
    ("cvae", {}),
    ("cvae", {"target": "label", "condition": "image"}),
    ("cmma", {}),
    ("cmma", {"target": "label", "condition": "image"}),
  ],
)
def test_loss_falls_for_every_model(tmp_path, mnist_slice, name, extra):
  result = fit(
    tmp_path,
    *mnist_slice,
    mnist_config(name, **extra),
    epochs=3,
    jit_compile=(name == "jmvae_kl"),
  )
  loss, val_loss = result.history["loss"], result.history["val_loss"]
  assert loss[-1] < loss[0] and val_loss[-1] < val_loss[0], (loss, val_loss)
  assert all(np.isfinite(loss))


def test_mixed_bfloat16_trains_with_float32_heads(tmp_path, mnist_slice):
  result = fit(
    tmp_path,
    *mnist_slice,
    mnist_config("jmvae_kl"),
    epochs=2,
    precision="mixed_bfloat16",
  )
  model = result.model
  assert model.joint_encoder.branches[0].layers[-1].compute_dtype == "bfloat16"
  assert model.joint_encoder.mean_head.compute_dtype == "float32"
  assert all(v.dtype == tf.float32 for v in model.trainable_variables)  # checkpoints stay float32
  assert model.decoders["image"](tf.zeros([1, 64])).dtype == tf.float32
  assert result.history["loss"][-1] < result.history["loss"][0]
  # the global policy is restored for whatever is built next
  assert keras.mixed_precision.global_policy().name == "float32"


def test_warmup_weight_rises_linearly():
  assert [callbacks.warmup_weight(e, 4) for e in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
  assert callbacks.warmup_weight(0, 0) == 1.0


def test_warmup_note_only_for_runs_that_end_inside_the_warm_up():
  assert "weight 0" in callbacks.warmup_note(1, 5)  # --epochs=1: no KL term at all
  assert "ends at epoch 3 with weight 0.4" in callbacks.warmup_note(3, 5)
  assert "weight 0.8" in callbacks.warmup_note(5, 5)
  assert callbacks.warmup_note(6, 5) is None  # epoch 6 trains with weight 1
  assert callbacks.warmup_note(1, 0) is None


def _weights(model):
  return [v.numpy() for v in model.trainable_variables]


def test_resume_continues_exactly_where_an_uninterrupted_run_would_be(tmp_path, mnist_slice):
  model_config = mnist_config("jmvae_kl")
  straight = fit(tmp_path / "straight", *mnist_slice, model_config, epochs=3, warmup_epochs=2)
  first = fit(tmp_path / "resumed", *mnist_slice, model_config, epochs=2, warmup_epochs=2)
  assert first.initial_epoch == 0
  # The input threads may change on resume (the pipeline is deterministic): the same batches.
  resumed = fit(
    tmp_path / "resumed", *mnist_slice, model_config, epochs=3, warmup_epochs=2, input_threads=1
  )
  assert resumed.initial_epoch == 2
  assert float(resumed.model.kl_weight.numpy()) == 1.0  # warm-up state: epoch 2 of 2
  assert int(resumed.model.optimizer.iterations.numpy()) == 3 * 10
  for a, b in zip(_weights(straight.model), _weights(resumed.model)):
    np.testing.assert_allclose(a, b, atol=1e-5)
  # a finished run asked for no more epochs does nothing
  again = fit(tmp_path / "resumed", *mnist_slice, model_config, epochs=3)
  assert again.history == {}


def test_with_input_threads_is_a_private_pool_with_the_same_batches(mnist_slice):
  train_slice, _ = mnist_slice
  dataset = mnist.train_dataset(train_slice.images, train_slice.labels, BATCH, seed=3)
  assert runtime.with_input_threads(dataset, 0) is dataset  # tf.data's own, autotuned
  private = runtime.with_input_threads(dataset, 1)
  options = private.options()
  assert options.threading.private_threadpool_size == 1
  assert options.autotune.enabled is False
  for a, b in zip(dataset.take(3), private.take(3)):
    for name in ("image", "label"):
      np.testing.assert_array_equal(a[name].numpy(), b[name].numpy())


def test_check_writable_names_the_flag_and_refuses_a_file(tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  with pytest.raises(files.WriteError, match=r"--output_dir=.*a_file exists and is not a"):
    files.check_writable(str(a_file), "--output_dir")
  with pytest.raises(files.WriteError, match=r"^the table's directory .*cannot be created"):
    files.check_writable(str(a_file / "sub"), "the table's directory")
  files.check_writable(str(tmp_path / "new" / "dir"), "--output_dir")  # creatable: passes
  assert not (tmp_path / "new").exists()  # and nothing was made


def _snapshot(directory):
  return {
    os.path.join(r, f): (os.path.getsize(os.path.join(r, f)), os.path.getmtime(os.path.join(r, f)))
    for r, _, fs in os.walk(directory)
    for f in fs
  }


def test_model_dir_of_another_model_is_refused_and_left_alone(tmp_path, mnist_slice):
  fit(tmp_path, *mnist_slice, mnist_config("jmvae"), epochs=1)
  before = _snapshot(tmp_path)
  with pytest.raises(
    run_dir.RunDirError, match="different model .--model 'jmvae' vs 'cvae'; saved vs asked"
  ):
    fit(tmp_path, *mnist_slice, mnist_config("cvae"), epochs=2)
  with pytest.raises(run_dir.RunDirError, match="latent_dim"):
    fit(tmp_path, *mnist_slice, mnist_config("jmvae", latent_dim=2), epochs=2)
  assert _snapshot(tmp_path) == before


def test_model_dir_contents_and_summaries(tmp_path, mnist_slice):
  fit(tmp_path, *mnist_slice, mnist_config("jmvae"), epochs=2, warmup_epochs=2)
  assert config.ModelConfig.from_json((tmp_path / run_dir.RUN_FILE).read_text()).model == "jmvae"
  assert (tmp_path / run_dir.FLAGS_FILE).read_text() == "--model=test\n"
  assert run_dir.find_checkpoint(str(tmp_path)).endswith("ckpt-2")
  tags = {}
  for event_file in tf.io.gfile.glob(str(tmp_path / "logs" / "train" / "events.*")):
    for event in tf.compat.v1.train.summary_iterator(event_file):
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(event.step)
  for tag in [
    "epoch_loss",
    "epoch_nll_image",
    "epoch_nll_label",
    "epoch_kl_prior",
    "epoch_kl_weight",  # from train_step via Keras; Summaries no longer repeats it
    "learning_rate",
    "examples_per_second",
    "latent_mean",
  ]:
    assert tag in tags, sorted(tags)
  restored = run_dir.restore_model(str(tmp_path))
  assert restored.latent_dim == 64


def test_restore_model_errors(tmp_path):
  with pytest.raises(run_dir.RunDirError, match="run.json"):
    run_dir.restore_model(str(tmp_path))


# --- BatchNorm statistics ------------------------------------------------------------------


class _Normalised(keras.Model):
  """The least a model needs for recalibrate_batchnorm: BatchNorm layers and loss_terms."""

  def __init__(self):
    super().__init__()
    self.norm = keras.layers.BatchNormalization()
    self.seen = []

  def loss_terms(self, batch, seed, training=None):
    self.seen.append(seed.numpy().tolist())
    # Used twice a pass, as the VAE-GAN's decoder and discriminator are.
    return {"loss": [self.norm(batch[k], training=training) for k in ("x", "y")]}


@pytest.mark.parametrize(
  "shape, fused, ddof",
  [((20, 5), False, 0), ((4, 3, 3, 5), True, 1)],  # dense; images, as the conv networks'
)
def test_recalibrate_batchnorm_sets_the_average_of_the_batch_statistics(shape, fused, ddof):
  """The moving mean and variance become the means over every use, in every batch, of the
  batch's mean and variance (as Keras' moving averages take it: fused, with Bessel's
  correction), computed here with numpy, whatever they were before; momentum is as it was;
  each batch gets its own seed."""
  rng = np.random.default_rng(0)
  batches = [
    {
      k: tf.constant(rng.normal(3.0 * i + j, 1.0 + i, shape), tf.float32)
      for j, k in enumerate("xy")
    }
    for i in range(4)
  ]
  model = _Normalised()
  model.norm.build((None,) + shape[1:])
  assert model.norm.fused == fused  # the path under test
  model.norm.moving_mean.assign(tf.fill([5], 1e3))  # not averaged in: replaced
  model.norm.moving_variance.assign(tf.fill([5], 1e3))
  assert batchnorm.recalibrate_batchnorm(model, iter([]), seed=3) == 0  # nothing to average
  np.testing.assert_array_equal(model.norm.moving_variance.numpy(), np.full(5, 1e3, np.float32))
  assert batchnorm.recalibrate_batchnorm(model, iter(batches), seed=3) == 4
  xs = [b[k].numpy().reshape(-1, 5) for b in batches for k in "xy"]
  np.testing.assert_allclose(
    model.norm.moving_mean.numpy(), np.mean([x.mean(0) for x in xs], 0), rtol=1e-5
  )
  np.testing.assert_allclose(
    model.norm.moving_variance.numpy(),
    np.mean([x.var(0, ddof=ddof) for x in xs], 0),
    rtol=1e-5,
  )
  assert model.norm.momentum == 0.99
  assert len({tuple(s) for s in model.seen}) == 4


def test_recalibrate_batchnorm_without_batchnorm_reads_nothing():
  model = config.build_model(mnist_config("jmvae", latent_dim=2))  # MNIST MLPs
  assert not batchnorm.batchnorm_layers(model)
  assert batchnorm.recalibrate_batchnorm(model, iter([{"never": "read"}])) == 0


def _face_batches(steps_per_epoch):
  """train_dataset_fn for 16x16 faces with 40 attributes: batch `step` is a function of
  the global step alone, so a run starting at any epoch reads what it would have read."""

  def make(step):
    seed = tf.stack([tf.constant(11, tf.int64), step])
    return {
      "image": tf.random.stateless_uniform([8, 16, 16, 3], seed, -1.0, 1.0),
      "attributes": tf.where(tf.random.stateless_uniform([8, 40], seed + 1) < 0.5, -1.0, 1.0),
    }

  return lambda start_epoch: tf.data.Dataset.range(start_epoch * steps_per_epoch, 10**6).map(make)


def test_recalibrated_run_learns_the_same_weights_and_saves_averaged_statistics(tmp_path):
  """--recalibrate_batchnorm changes no weight; the last checkpoint holds BatchNorm
  statistics that recalibrate_batchnorm gives on the last epoch's first batches, not
  Keras' moving averages."""
  from jmvae_tf.likelihoods import GAUSSIAN_FIXED
  from jmvae_tf.modalities import Modality

  model_config = config.ModelConfig.make(
    "jmvae_kl",
    modalities=(
      Modality("image", GAUSSIAN_FIXED, (16, 16, 3)),
      Modality("attributes", GAUSSIAN_FIXED, (40,)),
    ),
    architecture="celeba_conv",
    dataset="celeb_a",
    latent_dim=4,
  )
  steps, batches = 3, _face_batches(3)
  models = {}
  for k in (0, 2):
    train_config = options.TrainConfig.make(
      epochs=2, batch_size=8, warmup_epochs=1, steps_per_execution=1, recalibrate_batchnorm=k
    )
    model_dir = str(tmp_path / f"recalibrate{k}")
    training.train(model_config, train_config, model_dir, batches, steps, verbose=0)
    models[k] = run_dir.restore_model(model_dir)  # what the last checkpoint holds
  plain, recalibrated = models[0], models[2]
  for a, b in zip(plain.trainable_variables, recalibrated.trainable_variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)
  moving = lambda m: [v.numpy() for v in m.non_trainable_variables if "moving" in v.name]  # noqa: E731
  before = moving(plain)
  assert len(before) == 2 * len(batchnorm.batchnorm_layers(plain)) > 0
  for v in plain.non_trainable_variables:  # so that equality below means replaced
    if "moving" in v.name:
      v.assign(tf.fill(v.shape, 1e3))
  last_epoch = list(batches(1).take(2))
  assert batchnorm.recalibrate_batchnorm(plain, last_epoch, model_config.seed) == 2
  for want, got, old in zip(moving(plain), moving(recalibrated), before):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert not np.allclose(got, old, rtol=1e-3)  # not the moving averages


def test_recalibration_on_several_replicas_is_refused_before_anything_is_written(
  tmp_path, monkeypatch
):
  """--strategy=auto picks MirroredStrategy where there are several GPUs: refused before the
  model dir is made, naming what to do instead; explicit names in TrainConfig itself."""
  auto = options.TrainConfig.make(epochs=1, batch_size=8, recalibrate_batchnorm=2)
  real = runtime.machine_defaults
  several_gpus = lambda jit_compile=False: dataclasses.replace(
    real(jit_compile), strategy="mirrored"
  )  # noqa: E731
  monkeypatch.setattr(runtime, "machine_defaults", several_gpus)
  model_config = mnist_config("jmvae", latent_dim=2)
  with pytest.raises(
    ValueError, match="'auto' is 'mirrored' here; train with --strategy=one_device"
  ):
    training.train(model_config, auto, str(tmp_path / "m"), _face_batches(1), 1, verbose=0)
  assert not (tmp_path / "m").exists()
  named = options.TrainConfig.make(strategy="multi_worker", recalibrate_batchnorm=2)
  with pytest.raises(ValueError, match="not with strategy 'multi_worker'; train with"):
    runtime.check_recalibration(named)


def test_recalibration_of_a_model_without_batchnorm_is_a_warning(tmp_path, capsys):
  model_config = mnist_config("jmvae", latent_dim=2)  # MNIST MLPs
  train_config = options.TrainConfig.make(epochs=1, batch_size=50, recalibrate_batchnorm=2)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (100, 28, 28), dtype=np.uint8)
  labels = rng.integers(0, 10, 100).astype(np.uint8)
  batches = lambda start: mnist.train_dataset(images, labels, 50, 0, start)  # noqa: E731
  training.train(model_config, train_config, str(tmp_path / "m"), batches, 2, verbose=0)
  assert "recalibrate_batchnorm: jmvae has no BatchNorm layer; ignored" in capsys.readouterr().err
