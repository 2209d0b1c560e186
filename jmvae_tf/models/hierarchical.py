"""Hierarchical JMVAE (eq 7-9) with the Gulrajani et al. (PixelVAE) factorisation."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from jmvae_tf import gaussian
from jmvae_tf.models.base import LOSS, MultimodalVAE, split_seed
from jmvae_tf.modalities import Modality
from jmvae_tf.networks import MNIST_MLP, Architecture, GaussianConditional


class HierarchicalJMVAE(MultimodalVAE):
  """L stochastic layers: p(z_L) p(z_{L-1}|z_L) ... p(z_1|z_2) prod_k p(x_k|z_1).

  Inference is one deterministic stack h_1 = joint features(x, w), h_{l+1} = f_l(h_l),
  with q(z_l|x,w) read off h_l (so all q(z_l) are computed in one pass). Loss (eq 9):
  sum_k -log p(x_k|z_1) + kl_weight * [KL(q(z_L)||N(0,I)) + sum_{l<L} KL(q(z_l)||p(z_l|z_{l+1}))],
  each KL with one sample of z_{l+1} ~ q(z_{l+1}|x,w).
  """

  def __init__(self, modalities: Sequence[Modality], latent_dim: int = 64, seed: int = 0,
               architecture: Architecture = MNIST_MLP, num_layers: int = 2, name=None):
    if num_layers < 2:
      raise ValueError(f"HierarchicalJMVAE needs num_layers >= 2, got {num_layers}")
    terms = tuple(f"nll_{m.name}" for m in modalities) + tuple(f"kl_z{l}" for l in range(1, num_layers + 1))
    super().__init__(modalities, latent_dim, terms, seed, name=name)
    self.architecture = architecture
    self.num_layers = int(num_layers)
    # z_1 from the joint encoder's features h_1; z_l (l >= 2) from h_l = features(h_{l-1}).
    self.joint_encoder = architecture.encoder(self.modality_specs, self.latent_dim, "joint_encoder")
    self.upper_encoders = [GaussianConditional(architecture.features(f"h{l}"), self.latent_dim, f"encoder_z{l}")
                           for l in range(2, num_layers + 1)]
    # p(z_l | z_{l+1}) for l = 1..L-1.
    self.priors = [architecture.conditional(self.latent_dim, f"prior_z{l}") for l in range(1, num_layers)]
    self.decoders = {m.name: architecture.decoder(m, f"decoder_{m.name}") for m in self.modality_specs}

  def encode_all(self, batch, training=None):
    """[(mean, variance) of q(z_l|x,w) for l = 1..L]."""
    h = self.joint_encoder.features(batch, training=training)
    posteriors = [self.joint_encoder.heads(h)]
    for encoder in self.upper_encoders:
      h = encoder.body(h, training=training)
      posteriors.append((encoder.mean_head(h), gaussian.softplus_variance(encoder.variance_head(h))))
    return posteriors

  def encode(self, batch, training=None):
    """(mean, variance) of q(z_1|x,w): the layer the decoders read."""
    return self.encode_all(batch, training)[0]

  def decode(self, z1, training=None):
    return {name: dec(z1, training=training) for name, dec in self.decoders.items()}

  def sample_prior(self, batch_size: int, seed, training=None):
    """z_1 from the generative chain p(z_L) ... p(z_1|z_2)."""
    seeds = split_seed(seed, self.num_layers)
    z = tf.random.stateless_normal([batch_size, self.latent_dim], seed=seeds[-1])
    for prior, s in zip(reversed(self.priors), reversed(seeds[:-1])):
      mean, variance = prior(z, training=training)
      z = gaussian.sample(mean, variance, s)
    return z

  def loss_terms(self, batch, seed, training=None):
    posteriors = self.encode_all(batch, training)
    seeds = split_seed(seed, self.num_layers)
    zs = [gaussian.sample(m, v, s) for (m, v), s in zip(posteriors, seeds)]
    terms = {f"nll_{name}": -dist.log_prob(batch[name]) for name, dist in self.decode(zs[0], training).items()}
    top_mean, top_var = posteriors[-1]
    terms[f"kl_z{self.num_layers}"] = gaussian.kl_divergence(top_mean, top_var)
    for l, prior in enumerate(self.priors, start=1):
      prior_mean, prior_var = prior(zs[l], training=training)  # p(z_l | z_{l+1}), z_{l+1} ~ q
      mean, variance = posteriors[l - 1]
      terms[f"kl_z{l}"] = gaussian.kl_divergence(mean, variance, prior_mean, prior_var)
    kl = tf.add_n([terms[f"kl_z{l}"] for l in range(1, self.num_layers + 1)])
    terms[LOSS] = tf.add_n([terms[f"nll_{n}"] for n in self.modality_names]) + self.kl_weight * kl
    return terms
