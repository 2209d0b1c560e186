"""Diagonal-Gaussian helpers used by every objective.

Encoders output a mean and a *variance* (softplus, as in the paper), so the
helpers take variances, not log-variances or scales. Each returns per-example
values (summed over the latent dimensions).
"""

from __future__ import annotations

import math

import tensorflow as tf

# Keeps softplus variances away from 0 so log(var) and 1/var stay finite.
MIN_VARIANCE = 1e-6


def softplus_variance(pre_activation: tf.Tensor) -> tf.Tensor:
  return tf.nn.softplus(pre_activation) + MIN_VARIANCE


def sample(mean: tf.Tensor, variance: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Reparameterised z = mean + sqrt(var) * eps, eps from a stateless seed (shape [2])."""
  eps = tf.random.stateless_normal(tf.shape(mean), seed=seed, dtype=mean.dtype)
  return mean + tf.sqrt(variance) * eps


def kl_divergence(mean_q, var_q, mean_p=None, var_p=None) -> tf.Tensor:
  """KL(N(mean_q, var_q) || N(mean_p, var_p)), summed over the last axis.

  With mean_p/var_p left out, p is the standard normal N(0, I).
  """
  if mean_p is None:
    mean_p = tf.zeros_like(mean_q)
  if var_p is None:
    var_p = tf.ones_like(var_q)
  kl = 0.5 * (
    tf.math.log(var_p) - tf.math.log(var_q) + (var_q + tf.square(mean_q - mean_p)) / var_p - 1.0
  )
  return tf.reduce_sum(kl, axis=-1)


def log_density(z, mean=None, variance=None) -> tf.Tensor:
  """log N(z; mean, variance) summed over the last axis (standard normal by default)."""
  if mean is None:
    mean = tf.zeros_like(z)
  if variance is None:
    variance = tf.ones_like(z)
  log2pi = tf.constant(math.log(2.0 * math.pi), z.dtype)
  return -0.5 * tf.reduce_sum(
    log2pi + tf.math.log(variance) + tf.square(z - mean) / variance, axis=-1
  )


def tile_samples(t: tf.Tensor, n: int) -> tf.Tensor:
  """[B, ...] -> [n*B, ...], sample-major (row s*B + b is example b)."""
  shape = tf.shape(t)
  tiled = tf.broadcast_to(t[tf.newaxis], tf.concat([[n], shape], 0))
  return tf.reshape(tiled, tf.concat([[n * shape[0]], shape[1:]], 0))


def sample_n(mean: tf.Tensor, variance: tf.Tensor, n: int, seed: tf.Tensor) -> tf.Tensor:
  """n reparameterised draws of N(mean, variance) per row: [n*B, D], sample-major."""
  return sample(tile_samples(mean, n), tile_samples(variance, n), seed)
