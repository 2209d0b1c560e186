"""Iterative sampling (eq 6): the given modality stays fixed, the missing one is resampled."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from jmvae_tf import config as config_lib
from jmvae_tf.evaluation import imputation_trajectory, iterative_impute

RNG = np.random.default_rng(1)
BATCH = {"image": tf.constant((RNG.random((6, 28, 28, 1)) < 0.3).astype(np.float32)),
         "label": tf.one_hot(tf.constant([0, 1, 2, 3, 4, 5]), 10)}


@pytest.fixture(scope="module", params=["jmvae", "hierarchical_jmvae", "jmvae_kl"])
def model(request):
  return config_lib.build_model(config_lib.ModelConfig(model=request.param, latent_dim=4))


def test_missing_image_is_resampled_and_the_label_kept(model):
  out = iterative_impute(model, BATCH, "image", iterations=3, seed=(0, 1))
  np.testing.assert_array_equal(out["label"].numpy(), BATCH["label"].numpy())
  image = out["image"].numpy()
  assert image.shape == (6, 28, 28, 1)
  assert set(np.unique(image)) <= {0.0, 1.0} and image.sum() > 0  # sampled from p(x|z), not left at 0
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


def test_trajectory_gives_one_mean_image_per_step_count(model):
  rows = imputation_trajectory(model, {"label": BATCH["label"]}, "image", [0, 1, 3], seed=(0, 0))
  assert len(rows) == 3
  for row in rows:
    assert row.shape == (6, 28, 28, 1)
    assert np.all((row.numpy() >= 0) & (row.numpy() <= 1))
  with pytest.raises(ValueError, match="increasing"):
    imputation_trajectory(model, BATCH, "image", [3, 1], seed=(0, 0))


def test_conditional_models_are_refused():
  cvae = config_lib.build_model(config_lib.ModelConfig(model="cvae", latent_dim=4))
  with pytest.raises(TypeError, match="JMVAE-family"):
    iterative_impute(cvae, BATCH, "image", iterations=1, seed=(0, 0))
