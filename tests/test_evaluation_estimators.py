"""The estimators against closed forms on linear-Gaussian models (tests/linear_gaussian_models.py)."""

from __future__ import annotations

import linear_gaussian_models as lg
import numpy as np
import pytest
import tensorflow as tf

from jmvae_tf import evaluation as ev

RNG = np.random.default_rng(0)
W = RNG.normal(size=(6, 1)).astype(np.float32)
X = RNG.normal(size=(6, 1)).astype(np.float32) * 1.5
BATCH = {"w": tf.constant(W), "x": tf.constant(X)}
SEED = (3, 4)
MANY = 200_000  # samples: Monte-Carlo error of the eq 11 means < 0.01


def test_jmvae_multi_conditional_is_expected_log_likelihood_under_the_posterior():
  model = lg.build_jmvae(kl=False)
  mean, cov = lg.jmvae_joint()
  post_mean, post_cov, _ = lg.gaussian_conditioning(mean, cov, [1, 2], np.concatenate([W, X], 1))
  got = ev.conditional_log_likelihood(
    model, BATCH, "x", ("x", "w"), num_samples=MANY, seed=SEED
  ).numpy()
  want = lg.expected_log_normal(X[:, 0], post_mean[:, 0], post_cov[0, 0], lg.A, lg.B, lg.SX)
  np.testing.assert_allclose(got, want, atol=0.03)
  got_w = ev.conditional_log_likelihood(
    model, BATCH, "w", ("x", "w"), num_samples=MANY, seed=SEED
  ).numpy()
  want_w = lg.expected_log_normal(W[:, 0], post_mean[:, 0], post_cov[0, 0], lg.C, lg.D, lg.SW)
  np.testing.assert_allclose(got_w, want_w, atol=0.03)


def test_jmvae_single_conditional_with_no_iterations_encodes_the_missing_modality_as_zero():
  model = lg.build_jmvae(kl=False)
  mean, cov = lg.jmvae_joint()
  zeros = np.zeros_like(X)
  # The encoder is linear: q(z | x=0, w) is the exact posterior formula evaluated at x = 0.
  post_mean, post_cov, _ = lg.gaussian_conditioning(
    mean, cov, [1, 2], np.concatenate([W, zeros], 1)
  )
  got = ev.conditional_log_likelihood(
    model, BATCH, "x", ("w",), num_samples=MANY, iterations=0, seed=SEED
  )
  want = lg.expected_log_normal(X[:, 0], post_mean[:, 0], post_cov[0, 0], lg.A, lg.B, lg.SX)
  np.testing.assert_allclose(got.numpy(), want, atol=0.03)


def test_jmvae_kl_single_conditional_uses_the_unimodal_encoder():
  model = lg.build_jmvae(kl=True)
  mean, cov = lg.jmvae_joint()
  post_mean, post_cov, _ = lg.gaussian_conditioning(mean, cov, [1], W)  # p(z | w), exact in q(z|w)
  got = ev.conditional_log_likelihood(
    model, BATCH, "x", ("w",), num_samples=MANY, iterations=50, seed=SEED
  )
  want = lg.expected_log_normal(X[:, 0], post_mean[:, 0], post_cov[0, 0], lg.A, lg.B, lg.SX)
  np.testing.assert_allclose(got.numpy(), want, atol=0.03)
  assert not model.uses_iterative_sampling(("w",))
  assert lg.build_jmvae(kl=False).uses_iterative_sampling(("w",))


def test_iwae_with_the_exact_posterior_is_exact():
  model = lg.build_jmvae(kl=True)
  mean, cov = lg.jmvae_joint()
  xw = np.concatenate([W, X], 1)
  log_joint = lg.log_mvn(xw, mean[1:], cov[1:, 1:])
  log_w = lg.log_normal(W[:, 0], mean[1], cov[1, 1])
  got_joint = ev.iwae_log_likelihood(model, BATCH, num_samples=8, seed=SEED).numpy()
  np.testing.assert_allclose(got_joint, log_joint, atol=1e-4)
  got_w = ev.iwae_log_likelihood(model, BATCH, observed=("w",), num_samples=8, seed=SEED).numpy()
  np.testing.assert_allclose(got_w, log_w, atol=1e-4)
  got_cond = ev.iwae_conditional_log_likelihood(
    model, BATCH, "x", ("w",), num_samples=8, seed=SEED
  ).numpy()
  np.testing.assert_allclose(got_cond, log_joint - log_w, atol=1e-4)


def test_jmvae_iwae_marginal_with_the_imputed_proposal_converges():
  model = lg.build_jmvae(kl=False)
  mean, cov = lg.jmvae_joint()
  got = ev.iwae_log_likelihood(
    model, BATCH, observed=("w",), num_samples=MANY, iterations=3, seed=SEED
  ).numpy()
  np.testing.assert_allclose(got, lg.log_normal(W[:, 0], mean[1], cov[1, 1]), atol=0.02)


def test_iwae_is_never_below_the_elbo_on_the_same_samples():
  for model in (lg.build_jmvae(kl=False), lg.build_hierarchical()):
    for observed in (None, ("w",)):
      log_w = ev.importance_log_weights(
        model, BATCH, observed, num_samples=50, iterations=2, seed=SEED
      )
      iwae = ev.iwae_log_likelihood(model, BATCH, observed, num_samples=50, iterations=2, seed=SEED)
      np.testing.assert_allclose(iwae.numpy(), ev.log_mean_exp(log_w).numpy(), rtol=1e-6)
      assert np.all(iwae.numpy() >= tf.reduce_mean(log_w, 0).numpy() - 1e-5)


def test_hierarchical_multi_conditional_follows_appendix_a2():
  model = lg.build_hierarchical()
  mean, cov = lg.hierarchical_joint()
  post_mean, post_cov, _ = lg.gaussian_conditioning(mean, cov, [2, 3], np.concatenate([W, X], 1))
  # z2 ~ q(z2|x,w) = N(m2, v2); z1 ~ p(z1|z2) = N(G z2, DELTA)  =>  z1 ~ N(G m2, G^2 v2 + DELTA).
  m1, v1 = lg.G * post_mean[:, 1], lg.G**2 * post_cov[1, 1] + lg.DELTA
  got = ev.conditional_log_likelihood(
    model, BATCH, "x", ("x", "w"), num_samples=MANY, seed=SEED
  ).numpy()
  np.testing.assert_allclose(
    got, lg.expected_log_normal(X[:, 0], m1, v1, lg.A, lg.B, lg.SX), atol=0.03
  )


def test_hierarchical_iwae_joint_converges_to_the_closed_form():
  model = lg.build_hierarchical()
  mean, cov = lg.hierarchical_joint()
  want = lg.log_mvn(np.concatenate([W, X], 1), mean[2:], cov[2:, 2:])
  got = ev.iwae_log_likelihood(model, BATCH, num_samples=MANY, seed=SEED).numpy()
  np.testing.assert_allclose(got, want, atol=0.02)


def test_cvae_estimators():
  model = lg.build_cvae()
  w, x = W[:, 0], X[:, 0]
  exact = lg.log_normal(x, lg.E * w + lg.B, lg.A**2 + lg.SX**2)
  np.testing.assert_allclose(
    ev.iwae_conditional_log_likelihood(model, BATCH, "x", ("w",), num_samples=4, seed=SEED).numpy(),
    exact,
    atol=1e-4,
  )
  single = ev.conditional_log_likelihood(
    model, BATCH, "x", ("w",), num_samples=MANY, seed=SEED
  ).numpy()
  # z from the prior is far from the posterior for the outlying examples: their Monte-Carlo
  # standard error is about 0.02 at MANY samples, so 3.5 standard errors.
  np.testing.assert_allclose(
    single, lg.expected_log_normal(x - lg.E * w, 0.0, 1.0, lg.A, lg.B, lg.SX), atol=0.07
  )
  post_var = 1.0 / (1.0 + lg.A**2 / lg.SX**2)
  post_mean = post_var * lg.A * (x - lg.E * w - lg.B) / lg.SX**2
  multi = ev.conditional_log_likelihood(
    model, BATCH, "x", ("x", "w"), num_samples=MANY, seed=SEED
  ).numpy()
  np.testing.assert_allclose(
    multi, lg.expected_log_normal(x - lg.E * w, post_mean, post_var, lg.A, lg.B, lg.SX), atol=0.03
  )
  with pytest.raises(ValueError, match="models x . w only"):
    ev.conditional_log_likelihood(model, BATCH, "w", ("x",))


def test_cmma_estimators():
  model = lg.build_cmma()
  w, x = W[:, 0], X[:, 0]
  prior_mean = lg.ALPHA * w + lg.BETA
  exact = lg.log_normal(x, lg.A * prior_mean + lg.B, lg.A**2 * lg.TAU + lg.SX**2)
  np.testing.assert_allclose(
    ev.iwae_conditional_log_likelihood(model, BATCH, "x", ("w",), num_samples=4, seed=SEED).numpy(),
    exact,
    atol=1e-4,
  )
  single = ev.conditional_log_likelihood(
    model, BATCH, "x", ("w",), num_samples=MANY, seed=SEED
  ).numpy()
  np.testing.assert_allclose(
    single, lg.expected_log_normal(x, prior_mean, lg.TAU, lg.A, lg.B, lg.SX), atol=0.03
  )


def test_estimates_are_reproducible_from_the_seed():
  model = lg.build_jmvae(kl=False)
  a = ev.conditional_log_likelihood(
    model, BATCH, "x", ("w",), num_samples=5, iterations=4, seed=(1, 2)
  )
  b = ev.conditional_log_likelihood(
    model, BATCH, "x", ("w",), num_samples=5, iterations=4, seed=(1, 2)
  )
  c = ev.conditional_log_likelihood(
    model, BATCH, "x", ("w",), num_samples=5, iterations=4, seed=(1, 3)
  )
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert not np.array_equal(a.numpy(), c.numpy())
