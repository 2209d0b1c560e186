"""Iterative sampling (eq 6): the given modality stays fixed, the missing one is resampled."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from model_configs import mnist_config

from jmvae_tf.models import config as config_lib
from jmvae_tf.models import iterative_impute

RNG = np.random.default_rng(1)
BATCH = {
  "image": tf.constant((RNG.random((6, 28, 28, 1)) < 0.3).astype(np.float32)),
  "label": tf.one_hot(tf.constant([0, 1, 2, 3, 4, 5]), 10),
}


@pytest.fixture(scope="module", params=["jmvae", "hierarchical_jmvae", "jmvae_kl"])
def model(request):
  return config_lib.build_model(mnist_config(request.param, latent_dim=4))


def test_missing_image_is_resampled_and_the_label_kept(model):
  out = iterative_impute(model, BATCH, "image", iterations=3, seed=(0, 1))
  np.testing.assert_array_equal(out["label"].numpy(), BATCH["label"].numpy())
  image = out["image"].numpy()
  assert image.shape == (6, 28, 28, 1)
  assert (
    set(np.unique(image)) <= {0.0, 1.0} and image.sum() > 0
  )  # sampled from p(x|z), not left at 0
  more = iterative_impute(model, BATCH, "image", iterations=4, seed=(0, 1))["image"].numpy()
  assert not np.array_equal(image, more)


def test_missing_label_is_one_hot_and_the_image_kept(model):
  out = iterative_impute(model, BATCH, "label", iterations=2, seed=(0, 2))
  np.testing.assert_array_equal(out["image"].numpy(), BATCH["image"].numpy())
  np.testing.assert_array_equal(out["label"].numpy().sum(-1), np.ones(6))


def test_zero_iterations_is_the_zero_start_and_the_true_value_is_never_read(model):
  out = iterative_impute(model, BATCH, "image", iterations=0, seed=(0, 1))
  assert out["image"].numpy().sum() == 0
  no_image = {"label": BATCH["label"]}  # the missing modality need not be in the batch
  a = iterative_impute(model, no_image, "image", iterations=2, seed=(5, 5))["image"].numpy()
  b = iterative_impute(model, BATCH, "image", iterations=2, seed=(5, 5))["image"].numpy()
  np.testing.assert_array_equal(a, b)


def test_reproducible_from_the_seed(model):
  a = iterative_impute(model, BATCH, "image", iterations=2, seed=(7, 8))["image"].numpy()
  b = iterative_impute(model, BATCH, "image", iterations=2, seed=(7, 8))["image"].numpy()
  c = iterative_impute(model, BATCH, "image", iterations=2, seed=(7, 9))["image"].numpy()
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_posterior_from_one_modality_is_the_joint_encoder_on_the_imputed_batch(model):
  label_only = {"label": BATCH["label"]}
  mean, variance = model.posterior(label_only, ["label"], seed=(4, 4), num_steps=3)
  if model.uses_iterative_sampling(["label"]):
    imputed = iterative_impute(model, label_only, "image", iterations=3, seed=(4, 4))
    want = model.joint_posterior_layers(imputed, training=False)[0]
  else:  # JMVAE-kl: its own q(z|w), whatever num_steps says
    want = model.subset_encoders["label"](label_only, training=False)
  np.testing.assert_allclose(mean, want[0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(variance, want[1], rtol=1e-5, atol=1e-6)


def test_conditional_models_are_refused():
  cvae = config_lib.build_model(mnist_config("cvae", latent_dim=4))
  with pytest.raises(ValueError, match="joint model"):
    iterative_impute(cvae, BATCH, "image", iterations=1, seed=(0, 0))


def test_several_missing_modalities_are_drawn_together_each_round():
  """With three modalities and one given, each round draws z ~ q(z|all) from the current
  state, then both missing ones from their decoders with the round's split seed: one round
  by hand, from zeros, equals iterative_impute's."""
  from jmvae_tf.core import gaussian
  from jmvae_tf.core.modalities import Modality
  from jmvae_tf.core.sampling import split_seed
  from jmvae_tf.models import config

  mods = (
    Modality("a", "bernoulli", (6,), "vector"),
    Modality("b", "bernoulli", (4,), "vector"),
    Modality("label", "categorical", (3,)),
  )
  model = config.build_model(config.ModelConfig.make("jmvae", mods, "mnist_mlp", "x", latent_dim=2))
  given = {"label": tf.one_hot([0, 2, 1], 3)}
  out = iterative_impute(model, given, ["a", "b"], iterations=1, seed=(4, 5))
  np.testing.assert_array_equal(out["label"].numpy(), given["label"].numpy())
  seed = tf.random.experimental.stateless_fold_in(tf.constant([4, 5], tf.int64), 0x1A7E)
  round_seed = tf.random.experimental.stateless_fold_in(seed, tf.constant(0, tf.int64))
  seed_z, seed_x = split_seed(round_seed, 2)
  start = {"a": tf.zeros([3, 6]), "b": tf.zeros([3, 4]), **given}
  mean, variance = model.joint_posterior_layers(start, training=False)[0]
  z = gaussian.sample(mean, variance, seed_z)
  dists = model.decode(z, names=["a", "b"])
  for name, s in zip(["a", "b"], split_seed(seed_x, 2)):
    want = dists[name].sample(seed=tf.cast(s, tf.int32)).numpy()
    np.testing.assert_array_equal(out[name].numpy(), want)
  with pytest.raises(ValueError, match="at least one given modality"):
    iterative_impute(model, {}, ["a", "b", "label"], iterations=1, seed=(0, 0))
  # The order in which the missing modalities are named does not change what is drawn.
  swapped = iterative_impute(model, given, ["b", "a"], iterations=2, seed=(4, 5))
  ordered = iterative_impute(model, given, ["a", "b"], iterations=2, seed=(4, 5))
  for name in ("a", "b"):
    np.testing.assert_array_equal(swapped[name].numpy(), ordered[name].numpy())


def test_naming_nothing_or_an_unknown_modality_says_so(model):
  with pytest.raises(ValueError, match="at least one missing modality; none was named"):
    iterative_impute(model, BATCH, [], iterations=1, seed=(0, 0))
  with pytest.raises(ValueError, match="'imgae': .* has no such modality"):
    iterative_impute(model, BATCH, "imgae", iterations=1, seed=(0, 0))


@pytest.mark.parametrize("missing", ["image", "label"])
def test_the_given_modalities_branches_worked_out_once_give_the_chain_recomputed_each_round(
  model, missing
):
  """iterative_impute works out what the joint encoder's branches make of the given modality
  once, not every round; three rounds by hand, with the whole joint encoder on the current
  batch in each, draw the same values bit for bit."""
  from jmvae_tf.core import gaussian
  from jmvae_tf.core.sampling import split_seed

  if not model.uses_iterative_sampling([n for n in model.modality_names if n != missing]):
    pytest.skip(f"{model.name} infers from one modality without iterative sampling")
  given = [n for n in model.modality_names if n != missing]
  assert sorted(model.joint_branch_outputs(BATCH, given)) == given
  out = iterative_impute(model, BATCH, missing, iterations=3, seed=(2, 3))
  seed = tf.random.experimental.stateless_fold_in(tf.constant([2, 3], tf.int64), 0x1A7E)
  current = {**BATCH, missing: tf.zeros_like(BATCH[missing])}
  for i in range(3):
    round_seed = tf.random.experimental.stateless_fold_in(seed, tf.constant(i, tf.int64))
    seed_z, seed_x = split_seed(round_seed, 2)
    mean, variance = model.joint_posterior_layers(current, training=False)[0]
    z = gaussian.sample(mean, variance, seed_z)
    drawn = model.decode(z, names=[missing])[missing].sample(seed=tf.cast(seed_x, tf.int32))
    current = {**current, missing: tf.cast(drawn, tf.float32)}
  np.testing.assert_array_equal(out[missing].numpy(), current[missing].numpy())
