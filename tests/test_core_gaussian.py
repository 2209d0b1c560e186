"""Gaussian helpers against TFP and against hand computations."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from jmvae_tf.core import gaussian

tfd = tfp.distributions


def _random(shape, seed, positive=False):
  x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
  return np.exp(x) if positive else x


def test_kl_to_standard_normal_matches_tfp():
  mean, var = _random((5, 7), 0), _random((5, 7), 1, positive=True)
  ours = gaussian.kl_divergence(mean, var).numpy()
  q = tfd.MultivariateNormalDiag(mean, np.sqrt(var))
  p = tfd.MultivariateNormalDiag(np.zeros_like(mean), np.ones_like(var))
  np.testing.assert_allclose(ours, tfd.kl_divergence(q, p).numpy(), rtol=1e-5)


def test_kl_between_two_gaussians_matches_hand_formula():
  mq, vq, mp, vp = (
    _random((4, 3), 2),
    _random((4, 3), 3, True),
    _random((4, 3), 4),
    _random((4, 3), 5, True),
  )
  hand = 0.5 * np.sum(np.log(vp / vq) + (vq + (mq - mp) ** 2) / vp - 1.0, axis=-1)
  np.testing.assert_allclose(gaussian.kl_divergence(mq, vq, mp, vp).numpy(), hand, rtol=1e-5)
  # and TFP agrees
  tfp_kl = tfd.kl_divergence(
    tfd.MultivariateNormalDiag(mq, np.sqrt(vq)), tfd.MultivariateNormalDiag(mp, np.sqrt(vp))
  )
  np.testing.assert_allclose(
    gaussian.kl_divergence(mq, vq, mp, vp).numpy(), tfp_kl.numpy(), rtol=1e-5
  )


def test_kl_of_identical_gaussians_is_zero():
  m, v = _random((3, 4), 6), _random((3, 4), 7, True)
  np.testing.assert_allclose(gaussian.kl_divergence(m, v, m, v).numpy(), 0.0, atol=1e-6)


def test_log_density_matches_tfp():
  z, m, v = _random((6, 5), 8), _random((6, 5), 9), _random((6, 5), 10, True)
  expected = tfd.MultivariateNormalDiag(m, np.sqrt(v)).log_prob(z).numpy()
  np.testing.assert_allclose(gaussian.log_density(z, m, v).numpy(), expected, rtol=1e-5)
  np.testing.assert_allclose(
    gaussian.log_density(z).numpy(),
    tfd.MultivariateNormalDiag(np.zeros_like(z)).log_prob(z).numpy(),
    rtol=1e-5,
  )


def test_sample_is_seeded_and_has_the_right_moments():
  mean = tf.fill([20000, 2], 3.0)
  var = tf.fill([20000, 2], 4.0)
  a = gaussian.sample(mean, var, tf.constant([1, 2], tf.int64))
  b = gaussian.sample(mean, var, tf.constant([1, 2], tf.int64))
  c = gaussian.sample(mean, var, tf.constant([1, 3], tf.int64))
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert not np.allclose(a.numpy(), c.numpy())
  # standard error of the mean is 2/sqrt(20000) ~ 0.014; of the variance ~ 4*sqrt(2/20000) ~ 0.04
  assert abs(a.numpy().mean() - 3.0) < 0.05
  assert abs(a.numpy().var() - 4.0) < 0.2


def test_softplus_variance_is_positive_even_for_very_negative_inputs():
  v = gaussian.softplus_variance(tf.constant([-100.0, 0.0, 100.0])).numpy()
  assert (v > 0).all()
  np.testing.assert_allclose(v[1], np.log(2.0) + gaussian.MIN_VARIANCE, rtol=1e-6)
