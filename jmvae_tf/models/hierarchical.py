"""Hierarchical JMVAE (eq 7-9) with the Gulrajani et al. (PixelVAE) factorisation."""

from __future__ import annotations

from typing import List

import tensorflow as tf

from jmvae_tf.core import gaussian
from jmvae_tf.core.sampling import split_seed
from jmvae_tf.models.jmvae import JMVAE
from jmvae_tf.networks.blocks import GaussianConditional


class HierarchicalJMVAE(JMVAE):
  """L stochastic layers: p(z_L) p(z_{L-1}|z_L) ... p(z_1|z_2) prod_k p(x_k|z_1).

  JMVAE's decoders, likelihood terms and iterative sampling; only the latent chain
  and its KL terms differ. Inference is one deterministic stack h_1 = joint
  features(x, w), h_{l+1} = f_l(h_l), with q(z_l|x,w) read off h_l (all q(z_l) in
  one pass). KL terms (eq 9): KL(q(z_L)||N(0,I)) + sum_{l<L} KL(q(z_l)||p(z_l|z_{l+1})),
  each with one sample of z_{l+1} ~ q(z_{l+1}|x,w).
  """

  def __init__(self, modalities, options, architecture=None, name=None):
    super().__init__(modalities, options, architecture, name=name)
    architecture = self.architecture
    # z_l (l >= 2) from h_l = features(h_{l-1}); z_1 from the joint encoder's h_1.
    self.upper_encoders = [
      GaussianConditional(architecture.features(f"h{l}"), self.latent_dim, f"encoder_z{l}")
      for l in range(2, self.num_layers + 1)
    ]
    # p(z_l | z_{l+1}) for l = 1..L-1.
    self.priors = [
      architecture.conditional(self.latent_dim, f"prior_z{l}") for l in range(1, self.num_layers)
    ]

  @property
  def num_layers(self) -> int:
    return self.options.num_layers

  # --- the latent chain ----------------------------------------------------------------------
  def kl_term_names(self):
    return tuple(f"kl_z{l}" for l in range(1, self.num_layers + 1))

  def joint_posterior_layers(self, batch, training=None, branch_outputs=None):
    h = self.joint_encoder.features(batch, training=training, branch_outputs=branch_outputs)
    layers = [self.joint_encoder.heads(h)]
    for encoder in self.upper_encoders:
      h = encoder.features(h, training=training)
      layers.append(encoder.heads(h))
    return layers

  def sample_posterior(self, layers, seed):
    seeds = split_seed(seed, self.num_layers)
    return [gaussian.sample(m, v, s) for (m, v), s in zip(layers, seeds)]

  def kl_terms(self, layers, zs, training=None):
    top_mean, top_var = layers[-1]
    terms = {}
    for l, prior in enumerate(self.priors, start=1):
      prior_mean, prior_var = prior(zs[l], training=training)  # p(z_l | z_{l+1}), z_{l+1} ~ q
      mean, variance = layers[l - 1]
      terms[f"kl_z{l}"] = gaussian.kl_divergence(mean, variance, prior_mean, prior_var)
    terms[f"kl_z{self.num_layers}"] = gaussian.kl_divergence(top_mean, top_var)
    return {name: terms[name] for name in self.kl_term_names()}

  def descend(self, z_top: tf.Tensor, seeds) -> List[tf.Tensor]:
    """[z_1, ..., z_L] drawn down the prior chain p(z_{L-1}|z_L) ... p(z_1|z_2) from z_L;
    seeds[l] draws z_{l+1} (seeds[L-1], z_L's own, is not used here)."""
    zs = [z_top]
    for prior, s in zip(reversed(self.priors), reversed(seeds[:-1])):
      mean, variance = prior(zs[0], training=False)
      zs.insert(0, gaussian.sample(mean, variance, s))
    return zs

  # --- inference -----------------------------------------------------------------------------
  def latent_draws(self, layers, n, seed):
    """z_1 for the eq 11 bound as appendix A.2: z_L ~ q(z_L|.), then down the prior chain."""
    seeds = split_seed(seed, self.num_layers)
    mean, variance = layers[-1]
    return self.descend(gaussian.sample_n(mean, variance, n, seeds[-1]), seeds)[0]

  def sample_prior_layers(self, n, seed):
    seeds = split_seed(seed, self.num_layers)
    z_top = tf.random.stateless_normal(tf.stack([n, self.latent_dim]), seed=seeds[-1])
    return self.descend(z_top, seeds)

  def prior_log_density(self, zs, batch=None):
    total = gaussian.log_density(zs[-1])
    for l, prior in enumerate(self.priors):  # p(z_{l+1} | z_{l+2}) in 0-based layers
      mean, variance = prior(zs[l + 1], training=False)
      total += gaussian.log_density(zs[l], mean, variance)
    return total

  def describe_inference(self, given, num_steps):
    text = super().describe_inference(given, num_steps)
    return text + "; the bound draws z_2 ~ q(z_2|.), z_1 ~ p(z_1|z_2) (A.2)"
