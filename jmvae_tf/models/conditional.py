"""The paper's one-directional baselines: CVAE and CMMA, each for target | condition."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from jmvae_tf.core import gaussian
from jmvae_tf.core.missing import where_held
from jmvae_tf.core.modalities import by_name
from jmvae_tf.models.base import LOSS, MultimodalVAE
from jmvae_tf.models.steps import WEIGHTS


class ConditionalModel(MultimodalVAE):
  """Shared parts of CVAE and CMMA: a target modality generated given a condition,
  and a joint encoder q(z | target, condition).

  Inference: from (target, condition) the encoder; from the condition alone the
  prior p(z[|condition]), which is what generation samples. The condition is never
  generated, so the model has no z from the target alone and no unconditional prior.
  """

  def __init__(self, modalities, options, architecture=None, name=None):
    options = options.bind([m.name for m in modalities])
    self.target_spec = by_name(modalities, options.target)
    self.condition_spec = by_name(modalities, options.condition)
    super().__init__((self.target_spec, self.condition_spec), options, architecture, name=name)
    self.data_modalities = tuple(modalities)
    self.target, self.condition = options.target, options.condition
    self.joint_encoder = self.architecture.encoder(
      self.modality_specs, self.latent_dim, "joint_encoder"
    )

  def loss_term_names(self):
    return (f"nll_{self.options.target}", "kl_prior")

  def prior(self, batch, training=None):
    """(mean, variance) of the prior over z, which may read batch[condition]."""
    raise NotImplementedError

  def loss_terms(self, batch, seed, training=None):
    mean, variance = self.joint_encoder(batch, training=training)
    z = gaussian.sample(mean, variance, seed)
    nll = -self.decode(z, batch, training=training)[self.target].log_prob(batch[self.target])
    prior_mean, prior_var = self.prior(batch, training)
    kl = gaussian.kl_divergence(mean, variance, prior_mean, prior_var)
    return {f"nll_{self.target}": nll, "kl_prior": kl, LOSS: nll + self.kl_weight * kl}

  # --- incomplete examples: skipped ----------------------------------------------------------
  def incomplete_problem(self):
    return None

  def learns_from(self, present):
    return np.asarray(present[self.target], bool) & np.asarray(present[self.condition], bool)

  def incomplete_loss_terms(self, batch, present, seed, training=None):
    """An example lacking the target or the condition has nothing this model's bound of
    log p(target | condition) can read: skipped (its terms 0, weight 0); the driver says how
    many training examples that is."""
    both = present[self.target] & present[self.condition]
    terms = {k: where_held(both, v) for k, v in self.loss_terms(batch, seed, training).items()}
    weight = tf.cast(both, tf.float32)
    return {**terms, WEIGHTS: {k: weight for k in terms}}

  # --- inference -----------------------------------------------------------------------------
  @property
  def generated_modalities(self):
    return (self.target,)

  @property
  def conditioning_modalities(self):
    return (self.condition,)

  def joint_posterior_layers(self, batch, training=None):
    return [self.joint_encoder(batch, training=training)]

  def inference_problem(self, given):
    if self.condition not in given:
      return (
        f"{type(self).__name__} models {self.target} | {self.condition} only; "
        f"it cannot infer z from {','.join(given)} without {self.condition}"
      )
    return None

  def posterior_layers(self, batch, given, seed=(0, 0), num_steps=0):
    given = self.check_given(given)
    if self.target in given:
      return self.joint_posterior_layers(batch, training=False)
    return [self.prior(batch, training=False)]

  def sample_prior_layers(self, n, seed):
    raise ValueError(
      f"{type(self).__name__}'s prior goes with its condition: "
      f"use posterior(batch, given=({self.condition!r},))"
    )

  def prior_log_density(self, zs, batch=None):
    mean, variance = self.prior(batch, training=False)
    return gaussian.log_density(zs[0], mean, variance)

  def describe_inference(self, given, num_steps):
    given = self.check_given(given)
    if self.target in given:
      return f"z ~ q(z|{self.target},{self.condition})"
    return f"z ~ the prior {self.prior_description}"


class CVAE(ConditionalModel):
  """Conditional VAE: q(z|t,c), p(z) = N(0,I), p(t|z,c) (decoder reads [z, flatten(c)])."""

  prior_description = "N(0,I); the decoder reads the condition"

  def __init__(self, modalities, options, architecture=None, name=None):
    super().__init__(modalities, options, architecture, name=name)
    self.decoder = self.architecture.decoder(
      self.target_spec, f"decoder_{self.target}", self.options.decoder_variance
    )
    self.flatten = keras.layers.Flatten()

  def prior(self, batch, training=None):
    n = tf.shape(batch[self.condition])[0]
    return tf.zeros([n, self.latent_dim]), tf.ones([n, self.latent_dim])

  def decode(self, z, batch=None, names=None, training=False):
    if batch is None or self.condition not in batch:
      raise ValueError(f"CVAE's decoder reads the condition {self.condition!r}: pass it in batch")
    inputs = tf.concat([z, self.flatten(batch[self.condition])], axis=-1)
    return {self.target: self.decoder(inputs, training=training)}


class CMMA(ConditionalModel):
  """Conditional multimodal autoencoder: conditional prior p(z|c), q(z|t,c), p(t|z);
  trained on -log p(t|z) + KL(q(z|t,c) || p(z|c))."""

  prior_description = "p(z|condition)"

  def __init__(self, modalities, options, architecture=None, name=None):
    super().__init__(modalities, options, architecture, name=name)
    self.prior_encoder = self.architecture.encoder(
      [self.condition_spec], self.latent_dim, f"prior_{self.condition}"
    )
    self.decoder = self.architecture.decoder(
      self.target_spec, f"decoder_{self.target}", self.options.decoder_variance
    )

  def prior(self, batch, training=None):
    return self.prior_encoder(batch, training=training)

  def decode(self, z, batch=None, names=None, training=False):
    return {self.target: self.decoder(z, training=training)}
