"""Tiny linear-Gaussian models with hand-set weights, whose likelihoods have closed forms.

Two 1-D Gaussian modalities x, w and a 1-D latent; every network is linear (identity
bodies, the Dense heads set by hand) so p(x, w), p(w), p(x|w) and the exact posteriors
are Gaussian and computed here in numpy, independently of the estimators under test.
"""

from __future__ import annotations

import math

import numpy as np
import tf_keras as keras

from jmvae_tf import models
from jmvae_tf.core import gaussian, options
from jmvae_tf.core.likelihoods import GAUSSIAN
from jmvae_tf.core.modalities import Modality
from jmvae_tf.networks import architecture, blocks

MODALITIES = (Modality("w", GAUSSIAN, (1,), "vector"), Modality("x", GAUSSIAN, (1,), "vector"))


def identity(name=None):
  return keras.layers.Activation("linear", name=name)


# Every modality's branch only flattens it, and its decoder's body is the identity: the Dense
# heads alone, set by hand, make every network linear.
LINEAR = architecture.Architecture(
  "linear_test",
  families={
    "vector": architecture.FamilyNetworks(
      branch=lambda modality, name: keras.layers.Flatten(name=name),
      decoder=lambda modality, name, variance: blocks.Decoder(
        identity(f"{name}_body"), modality, name=name
      ),
    )
  },
  conditional=lambda latent_dim, name: blocks.GaussianConditional(
    identity(f"{name}_body"), latent_dim, name
  ),
  features=lambda name: identity(name),
)


def softplus_inverse(y: float) -> float:
  return math.log(math.expm1(y))


def set_gaussian_heads(module, mean_kernel, mean_bias, variance):
  """Mean = inputs @ mean_kernel + mean_bias; constant variance (softplus head, as the encoders)."""
  k = np.asarray(mean_kernel, np.float32).reshape(-1, 1)
  module.mean_head.set_weights([k, np.asarray([mean_bias], np.float32)])
  module.variance_head.set_weights(
    [np.zeros_like(k), np.asarray([softplus_inverse(variance - gaussian.MIN_VARIANCE)], np.float32)]
  )


def set_decoder(decoder, kernel, bias, std):
  """loc = inputs @ kernel + bias, scale = std (IndependentNormal: softplus of the second param)."""
  k = np.asarray(kernel, np.float32).reshape(-1, 1)
  dense = decoder.head.layers[0]
  dense.set_weights(
    [
      np.concatenate([k, np.zeros_like(k)], 1),
      np.asarray([bias, softplus_inverse(std)], np.float32),
    ]
  )


def gaussian_conditioning(mean, cov, obs_idx, obs):
  """Posterior (mean [N, a], cov [a, a]) of the other coordinates given obs [N, b] of obs_idx."""
  mean, cov = np.asarray(mean, float), np.asarray(cov, float)
  rest = [i for i in range(len(mean)) if i not in obs_idx]
  s_ab = cov[np.ix_(rest, obs_idx)]
  s_bb = cov[np.ix_(obs_idx, obs_idx)]
  gain = s_ab @ np.linalg.inv(s_bb)
  post_mean = mean[rest] + (obs - mean[obs_idx]) @ gain.T
  return post_mean, cov[np.ix_(rest, rest)] - gain @ s_ab.T, gain


def log_normal(v, mean, var):
  return -0.5 * (math.log(2 * math.pi) + np.log(var) + (v - mean) ** 2 / var)


def log_mvn(v, mean, cov):
  d = v - mean
  _, logdet = np.linalg.slogdet(cov)
  return -0.5 * (
    v.shape[-1] * math.log(2 * math.pi)
    + logdet
    + np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
  )


def expected_log_normal(v, mean_z, var_z, slope, bias, std):
  """E_{z ~ N(mean_z, var_z)} log N(v; slope z + bias, std^2): the eq 11 bound in closed form."""
  return -0.5 * (
    math.log(2 * math.pi * std**2) + ((v - slope * mean_z - bias) ** 2 + slope**2 * var_z) / std**2
  )


# z ~ N(0, 1); x = A z + B + sx e; w = C z + D + sw e'.
A, B, SX = 1.5, 0.3, 0.7
C, D, SW = -0.8, -0.2, 0.5


def jmvae_joint():
  """Mean and covariance of (z, w, x) under the one-layer model."""
  mean = np.array([0.0, D, B])
  cov = np.array([[1.0, C, A], [C, C * C + SW**2, A * C], [A, A * C, A * A + SX**2]])
  return mean, cov


def build_jmvae(kl: bool):
  """JMVAE (kl=False) or JMVAE-kl with the exact posteriors as encoders."""
  cls, opts = (
    (models.JMVAEKL, options.JMVAEKLOptions) if kl else (models.JMVAE, options.ModelOptions)
  )
  model = cls(MODALITIES, opts(latent_dim=1), LINEAR).initialize()
  set_decoder(model.decoders["x"], [A], B, SX)
  set_decoder(model.decoders["w"], [C], D, SW)
  mean, cov = jmvae_joint()
  _, post_cov, gain = gaussian_conditioning(mean, cov, [1, 2], np.zeros((1, 2)))
  set_gaussian_heads(model.joint_encoder, gain[0], -(gain[0] @ mean[1:]), post_cov[0, 0])
  if kl:
    for name, idx in (("w", 1), ("x", 2)):
      _, c, g = gaussian_conditioning(mean, cov, [idx], np.zeros((1, 1)))
      set_gaussian_heads(model.subset_encoders[name], g[0], -(g[0] @ mean[[idx]]), c[0, 0])
  return model


# Hierarchy: z2 ~ N(0,1); z1 = G z2 + N(0, DELTA); x, w from z1 as above.
G, DELTA = 0.9, 0.4


def hierarchical_joint():
  """Mean and covariance of (z1, z2, w, x)."""
  v1 = G * G + DELTA
  cov = np.array(
    [
      [v1, G, C * v1, A * v1],
      [G, 1.0, C * G, A * G],
      [C * v1, C * G, C * C * v1 + SW**2, A * C * v1],
      [A * v1, A * G, A * C * v1, A * A * v1 + SX**2],
    ]
  )
  return np.array([0.0, 0.0, D, B]), cov


def build_hierarchical():
  """Hierarchical JMVAE whose q(z1|x,w), q(z2|x,w) are the exact marginal posteriors."""
  model = models.HierarchicalJMVAE(
    MODALITIES, options.HierarchicalJMVAEOptions(latent_dim=1), LINEAR
  ).initialize()
  set_decoder(model.decoders["x"], [A], B, SX)
  set_decoder(model.decoders["w"], [C], D, SW)
  mean, cov = hierarchical_joint()
  _, post_cov, gain = gaussian_conditioning(mean, cov, [2, 3], np.zeros((1, 2)))
  set_gaussian_heads(model.joint_encoder, gain[0], -(gain[0] @ mean[2:]), post_cov[0, 0])
  set_gaussian_heads(model.upper_encoders[0], gain[1], -(gain[1] @ mean[2:]), post_cov[1, 1])
  set_gaussian_heads(model.priors[0], [G], 0.0, DELTA)
  return model


# CVAE (x | w): z ~ N(0,1), x = A z + E w + B + sx e.
# CMMA: z | w ~ N(ALPHA w + BETA, TAU), x = A z + B + sx e.
E = 0.6
ALPHA, BETA, TAU = 0.5, 0.1, 0.3


def build_cvae():
  model = models.CVAE(
    MODALITIES, options.ConditionalOptions(latent_dim=1, target="x", condition="w"), LINEAR
  ).initialize()
  set_decoder(model.decoder, [A, E], B, SX)  # decoder input [z, w]
  post_var = 1.0 / (1.0 + A * A / SX**2)
  g = post_var * A / SX**2  # mean = g (x - E w - B); encoder features [w, x]
  set_gaussian_heads(model.joint_encoder, [-g * E, g], -g * B, post_var)
  return model


def build_cmma():
  model = models.CMMA(
    MODALITIES, options.ConditionalOptions(latent_dim=1, target="x", condition="w"), LINEAR
  ).initialize()
  set_decoder(model.decoder, [A], B, SX)
  set_gaussian_heads(model.prior_encoder, [ALPHA], BETA, TAU)
  post_var = 1.0 / (1.0 / TAU + A * A / SX**2)
  # mean = post_var (prior_mean / TAU + A (x - B) / SX^2), prior_mean = ALPHA w + BETA
  set_gaussian_heads(
    model.joint_encoder,
    [post_var * ALPHA / TAU, post_var * A / SX**2],
    post_var * (BETA / TAU - A * B / SX**2),
    post_var,
  )
  return model
