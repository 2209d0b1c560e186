"""JMVAE-kl with a VAE-GAN (models/jmvae_kl_gan.py) on tiny 16x16 faces: its options, the
values and signs of its losses, the three optimisers and their variables, exact resume,
divergence, and the consumers (evaluation, export) that see it through the inference API."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from model_configs import mnist_config
from stream_data import StreamData

from jmvae_tf import models
from jmvae_tf.core import gaussian, options
from jmvae_tf.core.likelihoods import GAUSSIAN_FIXED
from jmvae_tf.core.modalities import Modality
from jmvae_tf.core.options import JMVAEKLGANOptions
from jmvae_tf.core.sampling import split_seed
from jmvae_tf.evaluation import table
from jmvae_tf.models import config
from jmvae_tf.networks import mnist
from jmvae_tf.serving import export
from jmvae_tf.training import callbacks, driver, run_dir
from pipelines.mnist import mnist_modalities

# 16x16: the smallest images the CelebA networks take (four stride-2 layers).
MODALITIES = (
  Modality("image", GAUSSIAN_FIXED, (16, 16, 3), "image"),
  Modality("attributes", GAUSSIAN_FIXED, (40,), "vector"),
)
SEED = tf.constant([3, 7], tf.int64)


def make_config(**options):
  return config.ModelConfig.make(
    "jmvae_kl_gan",
    modalities=MODALITIES,
    architecture="celeba_conv",
    dataset="celeb_a",
    latent_dim=options.pop("latent_dim", 4),
    **options,
  )


def build(**options):
  keras.utils.set_random_seed(0)
  return config.build_model(make_config(**options))


def face_batch(n=4, seed=0):
  rng = np.random.default_rng(seed)
  return {
    "image": tf.constant(rng.uniform(-1, 1, (n, 16, 16, 3)), tf.float32),
    "attributes": tf.constant(rng.choice([-1.0, 1.0], (n, 40)), tf.float32),
  }


# --- options and registration ------------------------------------------------------------


def test_registered_with_jmvae_kl_options_and_its_own():
  names = config.option_names("jmvae_kl_gan")
  assert set(config.option_names("jmvae_kl")) < set(names)
  assert {"gan_gamma", "gan_likelihood", "gan_prior", "gan_discriminator", "gan_beta1"} <= set(
    names
  )
  made = make_config(gan_likelihood="pixels", gan_prior="uniform", gan_beta1=0.5)
  assert config.ModelConfig.from_json(made.to_json()) == made
  # The paper's (Larsen et al.'s) choices are the defaults.
  defaults = JMVAEKLGANOptions()
  assert (defaults.gan_likelihood, defaults.gan_prior, defaults.gan_discriminator) == (
    "features",
    "normal",
    "paper",
  )


@pytest.mark.parametrize(
  "option, value",
  [
    ("gan_gamma", -1.0),
    ("gan_likelihood", "mse"),
    ("gan_prior", "laplace"),
    ("gan_discriminator", "big"),
    ("gan_beta1", 1.0),
  ],
)
def test_bad_options_are_value_errors_naming_them(option, value):
  with pytest.raises(ValueError, match=option):
    JMVAEKLGANOptions(**{option: value})


def test_needs_an_architecture_with_a_discriminator_and_an_image():
  no_discriminator = dataclasses.replace(mnist.MNIST_MLP, discriminator=None)
  with pytest.raises(ValueError, match="no discriminator"):
    models.JMVAEKLGAN(mnist_modalities(), JMVAEKLGANOptions(latent_dim=2), no_discriminator)
  vectors = (
    Modality("a", GAUSSIAN_FIXED, (5,), "vector"),
    Modality("b", GAUSSIAN_FIXED, (3,), "vector"),
  )
  with pytest.raises(ValueError, match="exactly one modality of the image family"):
    config.build_model(
      config.ModelConfig.make("jmvae_kl_gan", vectors, "celeba_conv", "celeb_a", latent_dim=2)
    )
  # The family decides, not the rank: a [16, 16, 3] vector gives the GAN no image.
  spectrogram = (Modality("s", GAUSSIAN_FIXED, (16, 16, 3), "vector"), vectors[0])
  with pytest.raises(ValueError, match=r"got \[\('s', 'vector'\), \('a', 'vector'\)\]"):
    config.build_model(
      config.ModelConfig.make("jmvae_kl_gan", spectrogram, "celeba_conv", "celeb_a", latent_dim=2)
    )


def test_mnist_networks_have_an_mlp_discriminator():
  model = config.build_model(mnist_config("jmvae_kl_gan", latent_dim=2))
  model.compile(optimizer=keras.optimizers.legacy.Adam(1e-3))
  rng = np.random.default_rng(0)
  batch = {
    "image": tf.constant((rng.random((4, 28, 28, 1)) < 0.3).astype(np.float32)),
    "label": tf.one_hot(rng.integers(0, 10, 4), 10),
  }
  logit, features = model.discriminator(batch["image"])
  assert logit.shape == (4,) and features.shape == (4, 512)
  results = model.train_step(batch)
  assert all(np.isfinite(float(v)) for v in results.values())


def test_all_three_optimisers_are_built_before_the_first_step():
  """build_optimizer_state covers the two extra optimisers, so the first step makes no
  variables (tf.function would trace the training function again otherwise)."""
  model = build()
  model.compile(optimizer=keras.optimizers.legacy.Adam(1e-3), steps_per_execution=2)
  model.build_optimizer_state()
  groups = model.optimizer_groups()
  assert [o for o, _ in groups] == [model.optimizer, *model.extra_optimizers]
  for optimizer, variables in groups:  # Adam's two moments per variable, and its step
    assert len(optimizer.variables()) == 2 * len(variables) + 1
  model.fit(tf.data.Dataset.from_tensors(face_batch()).repeat(), steps_per_epoch=2, verbose=0)
  assert model.train_tf_function.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("style, has_batchnorm", [("paper", True), ("authors", False)])
def test_discriminator_styles(style, has_batchnorm):
  model = build(gan_discriminator=style)
  layers = model.discriminator.features.layers + model.discriminator.classifier.layers
  kinds = {type(layer).__name__ for layer in layers}
  assert ("BatchNormalization" in kinds) == has_batchnorm
  assert ("LeakyReLU" in kinds) == (not has_batchnorm)
  logit, features = model.discriminator(face_batch()["image"])
  assert logit.shape == (4,) and features.shape == (4, 1 * 1 * 256)


# --- the losses: values and signs ----------------------------------------------------------


def independent_terms(model, batch, seed, likelihood):
  """The terms recomputed from the networks, in inference mode, with the model's seeds."""
  posterior_seed, prior_seed = split_seed(seed, 2)
  mean, variance = model.joint_encoder(batch, training=False)
  z = gaussian.sample(mean, variance, posterior_seed)
  image_dist = model.decoders["image"](z, training=False)
  attr_dist = model.decoders["attributes"](z, training=False)
  z_fake = tf.random.stateless_normal([4, model.latent_dim], prior_seed)
  fake = model.decoders["image"](z_fake, training=False).mean()
  reconstruction = image_dist.mean()
  d_real, f_real = model.discriminator(batch["image"], training=False)
  d_rec, f_rec = model.discriminator(reconstruction, training=False)
  d_fake, _ = model.discriminator(fake, training=False)
  sigmoid = tf.sigmoid
  features_nll = -tf.reduce_sum(
    -0.5 * tf.square(f_real - f_rec) - 0.5 * math.log(2 * math.pi), axis=-1
  )
  image_nll = features_nll if likelihood == "features" else -image_dist.log_prob(batch["image"])
  kl_prior = gaussian.kl_divergence(mean, variance)
  kl_joint = sum(
    gaussian.kl_divergence(mean, variance, *model.subset_encoders[k](batch, training=False))
    for k in ("image", "attributes")
  )
  loss = image_nll - attr_dist.log_prob(batch["attributes"]) + kl_prior + kl_joint
  generator = -tf.math.log(sigmoid(d_rec)) - tf.math.log(sigmoid(d_fake))
  discriminator = (
    -tf.math.log(sigmoid(d_real))
    - tf.math.log(1 - sigmoid(d_rec))
    - tf.math.log(1 - sigmoid(d_fake))
  )
  return {
    "loss": loss,
    "nll_image_features": features_nll,
    "gan_generator": generator,
    "gan_discriminator": discriminator,
    "decoder_loss": 2.0 * image_nll + generator,
    "d_accuracy_real": tf.cast(d_real > 0, tf.float32),
    "d_accuracy_prior": tf.cast(d_fake < 0, tf.float32),
  }


@pytest.mark.parametrize("likelihood", ["features", "pixels"])
def test_loss_terms_equal_an_independent_computation(likelihood):
  model = build(gan_likelihood=likelihood, gan_gamma=2.0)
  batch = face_batch()
  terms = model.loss_terms(batch, SEED, training=False)
  expected = independent_terms(model, batch, SEED, likelihood)
  for name, value in expected.items():
    np.testing.assert_allclose(terms[name], value, rtol=2e-5, atol=1e-4, err_msg=name)
  for name in ("gan_generator", "gan_discriminator", "nll_image_features"):
    assert np.all(terms[name].numpy() > 0), name  # -log of probabilities, squared distances
  assert set(model.term_names) | {"loss"} == set(terms)


def test_uniform_prior_draws_fakes_in_the_unit_box():
  model = build(gan_prior="uniform")
  z = model.sample_fake_latents(500, SEED).numpy()
  assert z.shape == (500, 4) and z.min() >= -1 and z.max() <= 1 and z.min() < -0.9
  normal = build().sample_fake_latents(500, SEED).numpy()
  assert np.abs(normal).max() > 1.5


def compiled(**options):
  model = build(**options)
  model.compile(optimizer=keras.optimizers.legacy.Adam(1e-3))
  return model


def test_variable_groups_partition_the_trainable_variables():
  model = compiled()
  groups = [{v.ref() for v in g} for g in model.variable_groups()]
  assert all(groups)
  assert sum(len(g) for g in groups) == len(set().union(*groups))  # disjoint
  assert set().union(*groups) == {v.ref() for v in model.trainable_variables}
  assert {v.ref() for v in model.decoders["image"].trainable_variables} == groups[1]
  assert {v.ref() for v in model.discriminator.trainable_variables} == groups[2]
  assert {v.ref() for v in model.decoders["attributes"].trainable_variables} <= groups[0]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_each_optimiser_changes_only_its_own_variables(which):
  model = compiled()
  batch = face_batch()
  _, gradients = model._gan_loss_and_gradients(batch, SEED)
  groups = model.variable_groups()
  optimizers = (model.optimizer, model.decoder_optimizer, model.discriminator_optimizer)
  before = [[v.numpy().copy() for v in g] for g in groups]
  optimizers[which].apply_gradients(zip(gradients[which], groups[which]))
  for i, (group, old) in enumerate(zip(groups, before)):
    changed = [not np.array_equal(v.numpy(), o) for v, o in zip(group, old)]
    assert any(changed) == (i == which), (which, i)


def test_each_gradient_is_of_its_own_loss():
  """The decoder's gradient is that of gamma * image likelihood + generator loss, the
  discriminator's that of the GAN loss: recomputed with separate tapes."""
  model = compiled(gan_gamma=0.5)
  batch = face_batch()
  _, gradients = model._gan_loss_and_gradients(batch, SEED)
  for i, name in ((1, "decoder_loss"), (2, "gan_discriminator"), (0, "loss")):
    variables = model.variable_groups()[i]
    # Moving statistics move on every training-mode call; start each from the same ones.
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(model.loss_terms(batch, SEED, training=True)[name])
    expected = tape.gradient(loss, variables)
    for g, e in zip(gradients[i][:4], expected[:4]):  # the first layers of each network
      np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-6, err_msg=name)


def test_train_step_steps_all_three_optimisers_and_reports_every_term():
  model = compiled()
  results = model.train_step(face_batch())
  for optimizer in (model.optimizer, model.decoder_optimizer, model.discriminator_optimizer):
    assert int(optimizer.iterations) == 1
  expected = set(model.term_names) | {"loss", "kl_weight"}
  assert expected == set(results)
  assert {"d_accuracy_real", "d_accuracy_reconstruction", "d_accuracy_prior"} <= expected
  assert all(np.isfinite(float(v)) for v in results.values())


def test_beta1_is_set_on_all_three_optimisers():
  model = build(gan_beta1=0.5)
  model.compile(optimizer=keras.optimizers.legacy.Adam(1e-4))
  for optimizer in (model.optimizer, model.decoder_optimizer, model.discriminator_optimizer):
    assert float(optimizer.beta_1) == 0.5
    assert float(optimizer.learning_rate) == pytest.approx(1e-4)
  assert model.decoder_optimizer is not model.optimizer


def test_the_copies_follow_the_compiled_learning_rate():
  model = compiled()
  model.optimizer.learning_rate = 5e-5  # what a resumed run with a new --learning_rate does
  model.train_step(face_batch())
  for optimizer in (model.decoder_optimizer, model.discriminator_optimizer):
    assert float(optimizer.learning_rate) == pytest.approx(5e-5)


def test_discriminator_loss_falls_on_fixed_real_and_fake_batches():
  model = compiled()
  batch = face_batch()
  losses = []
  for _ in range(8):
    terms, gradients = model._gan_loss_and_gradients(batch, SEED)
    losses.append(float(tf.reduce_mean(terms["gan_discriminator"])))
    model.discriminator_optimizer.apply_gradients(zip(gradients[2], model.discriminator_variables))
  assert losses[-1] < losses[0] - 0.1, losses


# --- training: exact resume, divergence ----------------------------------------------------


def face_data(n=8, seed=0, nan=False):
  batch = {k: v.numpy() for k, v in face_batch(n, seed).items()}
  if nan:
    batch["image"][:] = np.nan
  return batch


def run_training(model_dir, epochs, nan=False):
  train_config = options.TrainConfig.make(
    epochs=epochs,
    batch_size=4,
    learning_rate=1e-3,
    warmup_epochs=2,
    steps_per_execution=1,
    strategy="default",
  )
  data = face_data(nan=nan)

  def dataset_fn(start_epoch):
    # A pure function of the step, like the real pipelines: a resume reads what it would have.
    ds = tf.data.Dataset.from_tensor_slices(data).repeat().batch(4, drop_remainder=True)
    return ds.skip(2 * start_epoch)

  config = make_config()
  stream = StreamData(config.modalities, dataset_fn, 2, architecture=config.architecture)
  return driver.train(config, stream, str(model_dir), train_config, verbose=0)


def checkpoint_values(model_dir):
  reader = tf.train.load_checkpoint(run_dir.find_checkpoint(str(model_dir)))
  return {
    name: reader.get_tensor(name)
    for name in reader.get_variable_to_shape_map()
    if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")
  }


@pytest.fixture(scope="module")
def resumed_runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("gan_runs")
  run_training(root / "straight", epochs=2)
  run_training(root / "resumed", epochs=1)
  run_training(root / "resumed", epochs=2)
  return root


def test_resume_is_exact_for_all_three_optimisers(resumed_runs):
  straight = checkpoint_values(resumed_runs / "straight")
  resumed = checkpoint_values(resumed_runs / "resumed")
  assert set(straight) == set(resumed)
  for owner in ("model/decoder_optimizer/", "model/discriminator_optimizer/", "optimizer/"):
    slots = [n for n in straight if n.startswith(owner) or f"/.OPTIMIZER_SLOT/{owner}" in n]
    assert any("iter" in n for n in slots), owner
  slot_names = [n for n in straight if ".OPTIMIZER_SLOT" in n]
  for optimizer in ("decoder_optimizer", "discriminator_optimizer"):
    assert any(optimizer in n for n in slot_names), optimizer  # Adam's m and v are saved
  for name in straight:
    np.testing.assert_array_equal(straight[name], resumed[name], err_msg=name)


def test_divergence_stops_with_the_last_good_checkpoint_kept(resumed_runs, tmp_path):
  import shutil

  model_dir = tmp_path / "diverging"
  shutil.copytree(resumed_runs / "straight", model_dir)
  before = checkpoint_values(model_dir)
  with pytest.raises(callbacks.TrainingDiverged, match="non-finite loss term.*ckpt-2 is kept"):
    run_training(model_dir, epochs=3, nan=True)
  assert run_dir.find_checkpoint(str(model_dir)).endswith("ckpt-2")
  after = checkpoint_values(model_dir)
  for name in before:
    np.testing.assert_array_equal(before[name], after[name], err_msg=name)


# --- consumers through the inference API ---------------------------------------------------


def test_evaluate_and_export_a_trained_model(resumed_runs, tmp_path):
  model = run_dir.load(str(resumed_runs / "straight"))
  assert isinstance(model, models.JMVAEKLGAN)
  dataset = tf.data.Dataset.from_tensor_slices(face_data(6, seed=1)).batch(3)
  result = table.evaluate(
    model,
    dataset,
    table.TABLE2.bind(model.modality_names).columns,
    num_samples=2,
    iterations=2,
    progress=False,
  )
  assert result["num_examples"] == 6
  assert set(result["values"]) == {c.key for c in table.TABLE2.bind(model.modality_names).columns}
  assert all(np.isfinite(v) for v in result["values"].values())
  path = export.export(model, str(tmp_path), "gan")
  loaded = tf.saved_model.load(path)
  batch = face_data(2, seed=2)
  out = loaded.signatures["encode"](
    image=tf.constant(batch["image"]), attributes=tf.constant(batch["attributes"])
  )
  mean, variance = model.posterior(batch, ["image", "attributes"])
  np.testing.assert_allclose(out["mean"], mean, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(out["variance"], variance, rtol=1e-5, atol=1e-6)
  faces = loaded.signatures["generate_x_from_w"](
    attributes=tf.constant(batch["attributes"]), seed=tf.constant([1, 2], tf.int64)
  )["image_mean"]
  assert faces.shape == (2, 16, 16, 3) and np.all(np.abs(faces.numpy()) <= 1)
