"""The paper's one-directional baselines: CVAE and CMMA, each for target | condition."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tf_keras as keras

from jmvae_tf import gaussian
from jmvae_tf.models.base import LOSS, MultimodalVAE
from jmvae_tf.modalities import Modality, by_name
from jmvae_tf.networks import MNIST_MLP, Architecture


class ConditionalModel(MultimodalVAE):
  """Shared parts of CVAE and CMMA: a target modality generated given a condition,
  and a joint encoder q(z | target, condition)."""

  def __init__(self, modalities: Sequence[Modality], target: str, condition: str, latent_dim=64, seed=0,
               architecture: Architecture = MNIST_MLP, name=None):
    if target == condition:
      raise ValueError(f"target and condition must differ, both are {target!r}")
    self.target_spec, self.condition_spec = by_name(modalities, target), by_name(modalities, condition)
    super().__init__((self.target_spec, self.condition_spec), latent_dim,
                     (f"nll_{target}", "kl_prior"), seed, name=name)
    self.architecture = architecture
    self.target, self.condition = target, condition
    self.joint_encoder = architecture.encoder(self.modality_specs, self.latent_dim, "joint_encoder")

  def encode(self, batch, training=None):
    return self.joint_encoder(batch, training=training)

  def prior(self, batch, training=None):
    """(mean, variance) of the prior over z: N(0, I) unless a subclass conditions it."""
    raise NotImplementedError

  def decode(self, z, condition, training=None):
    raise NotImplementedError

  def loss_terms(self, batch, seed, training=None):
    mean, variance = self.encode(batch, training)
    z = gaussian.sample(mean, variance, seed)
    nll = -self.decode(z, batch[self.condition], training).log_prob(batch[self.target])
    prior_mean, prior_var = self.prior(batch, training)
    kl = gaussian.kl_divergence(mean, variance, prior_mean, prior_var)
    return {f"nll_{self.target}": nll, "kl_prior": kl, LOSS: nll + self.kl_weight * kl}


class CVAE(ConditionalModel):
  """Conditional VAE: q(z|t,c), p(z) = N(0,I), p(t|z,c) (decoder reads [z, flatten(c)])."""

  def __init__(self, modalities, target, condition, latent_dim=64, seed=0, architecture=MNIST_MLP, name=None):
    super().__init__(modalities, target, condition, latent_dim, seed, architecture, name=name)
    self.decoder = architecture.decoder(self.target_spec, f"decoder_{target}")
    self.flatten = keras.layers.Flatten()

  def prior(self, batch, training=None):
    n = tf.shape(batch[self.condition])[0]
    return tf.zeros([n, self.latent_dim]), tf.ones([n, self.latent_dim])

  def decode(self, z, condition, training=None):
    return self.decoder(tf.concat([z, self.flatten(condition)], axis=-1), training=training)


class CMMA(ConditionalModel):
  """Conditional multimodal autoencoder: conditional prior p(z|c), q(z|t,c), p(t|z);
  trained on -log p(t|z) + KL(q(z|t,c) || p(z|c))."""

  def __init__(self, modalities, target, condition, latent_dim=64, seed=0, architecture=MNIST_MLP, name=None):
    super().__init__(modalities, target, condition, latent_dim, seed, architecture, name=name)
    self.prior_encoder = architecture.encoder([self.condition_spec], self.latent_dim, f"prior_{condition}")
    self.decoder = architecture.decoder(self.target_spec, f"decoder_{target}")

  def prior(self, batch, training=None):
    return self.prior_encoder(batch, training=training)

  def decode(self, z, condition, training=None):
    return self.decoder(z, training=training)
