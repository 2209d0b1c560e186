"""The objectives: each loss is the sum of its reported terms, weighted as the paper says."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras
from model_configs import mnist_config

from jmvae_tf import config, gaussian, models, options, registry
from pipelines.mnist import mnist_modalities

tfd = tfp.distributions
MODS = mnist_modalities()
SEED = tf.constant([7, 11], tf.int64)


def random_batch(n=6, seed=0):
  rng = np.random.default_rng(seed)
  return {
    "image": tf.constant((rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32)),
    "label": tf.one_hot(rng.integers(0, 10, n), 10),
  }


def build(name, **kw):
  return config.build_model(mnist_config(name, **kw))


def test_jmvae_loss_is_reconstruction_plus_weighted_kl():
  model = build("jmvae")
  model.kl_weight.assign(0.25)
  t = model.loss_terms(random_batch(), SEED)
  np.testing.assert_allclose(
    t["loss"], t["nll_image"] + t["nll_label"] + 0.25 * t["kl_prior"], rtol=1e-5
  )
  mean, var = model.joint_posterior_layers(random_batch(), training=False)[0]
  np.testing.assert_allclose(t["kl_prior"], gaussian.kl_divergence(mean, var), rtol=1e-5)


@pytest.mark.parametrize("alpha, anneal, reduction", [(1.0, False, "sum"), (0.1, True, "mean")])
def test_jmvae_kl_regulariser(alpha, anneal, reduction):
  model = build("jmvae_kl", alpha=alpha, anneal_alpha=anneal, alpha_reduction=reduction)
  model.kl_weight.assign(0.5)
  batch = random_batch()
  t = model.loss_terms(batch, SEED)
  # the KL(q(z|x,w) || q(z|x)) term against TFP's KL between the encoders' Gaussians
  mj, vj = model.joint_posterior_layers(batch, training=False)[0]
  mx, vx = model.posterior(batch, ["image"])
  tfp_kl = tfd.kl_divergence(
    tfd.MultivariateNormalDiag(mj, tf.sqrt(vj)), tfd.MultivariateNormalDiag(mx, tf.sqrt(vx))
  )
  np.testing.assert_allclose(t["kl_joint_image"], tfp_kl, rtol=1e-4)
  reg = t["kl_joint_image"] + t["kl_joint_label"]
  if reduction == "mean":
    reg = reg / 2
  weight = alpha * (0.5 if anneal else 1.0)
  expected = t["nll_image"] + t["nll_label"] + 0.5 * t["kl_prior"] + weight * reg
  np.testing.assert_allclose(t["loss"], expected, rtol=1e-5)


def test_jmvae_kl_has_an_encoder_for_each_proper_subset_of_three_modalities():
  from jmvae_tf.modalities import Modality

  mods = MODS + (Modality("extra", "bernoulli", (5,)),)
  model = models.JMVAEKL(mods, options.JMVAEKLOptions(latent_dim=4)).initialize()
  assert sorted(model.subset_encoders) == sorted(
    ["image", "label", "extra", "image+label", "extra+image", "extra+label"]
  )


def test_hierarchical_loss_and_kl_to_conditional_prior():
  model = build("hierarchical_jmvae")
  model.kl_weight.assign(1.0)
  batch = random_batch()
  t = model.loss_terms(batch, SEED)
  np.testing.assert_allclose(
    t["loss"], t["nll_image"] + t["nll_label"] + t["kl_z1"] + t["kl_z2"], rtol=1e-5
  )
  (m1, v1), (m2, v2) = model.joint_posterior_layers(batch)
  np.testing.assert_allclose(t["kl_z2"], gaussian.kl_divergence(m2, v2), rtol=1e-5)
  assert model.sample_prior(4, SEED).shape == (4, 64)


@pytest.mark.parametrize("name", ["cvae", "cmma"])
@pytest.mark.parametrize("target, condition", [("image", "label"), ("label", "image")])
def test_conditional_models(name, target, condition):
  model = build(name, target=target, condition=condition)
  batch = random_batch()
  t = model.loss_terms(batch, SEED)
  assert set(t) == {f"nll_{target}", "kl_prior", "loss"}
  mean, var = model.joint_posterior_layers(batch, training=False)[0]
  pm, pv = model.prior(batch)
  tfp_kl = tfd.kl_divergence(
    tfd.MultivariateNormalDiag(mean, tf.sqrt(var)), tfd.MultivariateNormalDiag(pm, tf.sqrt(pv))
  )
  np.testing.assert_allclose(t["kl_prior"], tfp_kl, rtol=1e-4)
  if name == "cvae":
    np.testing.assert_array_equal(pm, 0.0)
  else:  # CMMA's prior depends on the condition only
    other = dict(batch, **{target: tf.zeros_like(batch[target])})
    np.testing.assert_allclose(model.prior(other)[0], pm)


@pytest.mark.parametrize("name", [n for n in registry.MODEL_NAMES if n != "jmvae_kl_gan"])
def test_sampling_is_reproducible_from_the_seed(name):
  model = build(name)
  batch = random_batch()
  a = model.loss_terms(batch, SEED)["loss"]
  b = model.loss_terms(batch, SEED)["loss"]
  c = model.loss_terms(batch, tf.constant([7, 12], tf.int64))["loss"]
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def test_parameter_counts_of_whole_models():
  def dense(i, o):
    return i * o + o

  mlp = lambda n: dense(n, 512) + dense(512, 512)  # noqa: E731
  joint = mlp(784) + mlp(10) + 2 * dense(1024, 64)
  decoders = mlp(64) + dense(512, 784) + mlp(64) + dense(512, 10)
  unimodal = mlp(784) + mlp(10) + 4 * dense(512, 64)
  trainable = lambda m: sum(int(np.prod(v.shape)) for v in m.trainable_variables)  # noqa: E731
  assert trainable(build("jmvae")) == joint + decoders
  assert trainable(build("jmvae_kl")) == joint + decoders + unimodal
  # hierarchy: h2 = D512R-D512R on the 1024 features, z2 heads, p(z1|z2)
  upper = dense(1024, 512) + dense(512, 512) + 2 * dense(512, 64) + mlp(64) + 2 * dense(512, 64)
  assert trainable(build("hierarchical_jmvae")) == joint + decoders + upper


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
