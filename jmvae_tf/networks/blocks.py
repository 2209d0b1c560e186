"""The building blocks of every architecture: Gaussian encoders over any set of modalities,
Gaussian conditionals, decoders ending in their likelihood's TFP distribution layer, and a
VAE-GAN's discriminator. They know nothing of objectives or of any data set; the data sets'
architectures (`jmvae_tf.networks.mnist`, `jmvae_tf.networks.celeba`) are made of them.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import tensorflow as tf
import tf_keras as keras

from jmvae_tf.core import gaussian
from jmvae_tf.core.likelihoods import FIXED_VARIANCE, HEAD_DTYPE
from jmvae_tf.core.modalities import Modality

# The VAE-GAN discriminators' leaky ReLU (the authors' code).
LEAKY_RELU_SLOPE = 0.2


def mlp(hidden: Sequence[int], name: str, flatten: bool = True) -> keras.Sequential:
  """DkR-DkR-...: dense layers with ReLU (the paper's f_MLP); flattens its input first."""
  layers = [keras.layers.Flatten()] if flatten else []
  layers += [
    keras.layers.Dense(h, activation="relu", name=f"dense_{i}") for i, h in enumerate(hidden)
  ]
  return keras.Sequential(layers, name=name)


class GaussianEncoder(keras.Model):
  """q(z | modalities): one branch per modality, concatenated, then mean/variance heads.

  With one modality this is a unimodal encoder such as JMVAE-kl's q(z|x); with all
  of them it is the joint encoder q(z|x,w). `trunk` (optional) runs on the
  concatenation before the heads (the paper's CelebA D1024R). The variance goes
  through softplus, as in the paper.
  """

  def __init__(
    self,
    branches: Dict[str, keras.layers.Layer],
    latent_dim: int,
    trunk: Optional[keras.layers.Layer] = None,
    name: str = "encoder",
  ):
    super().__init__(name=name)
    self.modality_names = tuple(sorted(branches))
    self.branches = [branches[k] for k in self.modality_names]
    self.trunk = trunk
    self.latent_dim = latent_dim
    self.mean_head = keras.layers.Dense(latent_dim, name="mean", dtype=HEAD_DTYPE)
    self.variance_head = keras.layers.Dense(latent_dim, name="variance", dtype=HEAD_DTYPE)

  def branch_outputs(
    self, inputs: Dict[str, tf.Tensor], names: Sequence[str], training=None
  ) -> Dict[str, tf.Tensor]:
    """What the branches of the modalities `names` make of `inputs`: worked out once where
    those modalities stay fixed while the others change (iterative sampling), then given to
    `features`, which would compute the same tensors again."""
    return {
      k: branch(inputs[k], training=training)
      for k, branch in zip(self.modality_names, self.branches)
      if k in names
    }

  def features(
    self,
    inputs: Dict[str, tf.Tensor],
    training=None,
    branch_outputs: Optional[Dict[str, tf.Tensor]] = None,
  ) -> tf.Tensor:
    """The deterministic features h that the heads read (also used by the hierarchy);
    `branch_outputs` (from `branch_outputs`) stand in for the branches they cover."""
    known = branch_outputs or {}
    parts = [
      known[k] if k in known else branch(inputs[k], training=training)
      for k, branch in zip(self.modality_names, self.branches)
    ]
    h = parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)
    if self.trunk is not None:
      h = self.trunk(h, training=training)
    return h

  def heads(self, h: tf.Tensor):
    return self.mean_head(h), gaussian.softplus_variance(self.variance_head(h))

  def call(self, inputs: Dict[str, tf.Tensor], training=None, branch_outputs=None):
    """Returns (mean, variance) of q(z | inputs[modality_names]); `branch_outputs` as for
    `features`."""
    return self.heads(self.features(inputs, training=training, branch_outputs=branch_outputs))


class GaussianConditional(keras.Model):
  """p(z_l | z_{l+1}) or a conditional prior p(z | w): an MLP with Gaussian heads. Like
  GaussianEncoder, its features (what the heads read) and heads can be called apart."""

  def __init__(self, body: keras.layers.Layer, latent_dim: int, name: str):
    super().__init__(name=name)
    self.body = body
    self.mean_head = keras.layers.Dense(latent_dim, name="mean", dtype=HEAD_DTYPE)
    self.variance_head = keras.layers.Dense(latent_dim, name="variance", dtype=HEAD_DTYPE)

  def features(self, inputs, training=None) -> tf.Tensor:
    return self.body(inputs, training=training)

  def heads(self, h: tf.Tensor):
    return self.mean_head(h), gaussian.softplus_variance(self.variance_head(h))

  def call(self, inputs, training=None):
    return self.heads(self.features(inputs, training=training))


def distribution_head(
  modality: Modality, name: str = "head", variance: float = FIXED_VARIANCE
) -> keras.Sequential:
  """Dense parameters + the distribution layer of the modality's likelihood (`variance`: that
  of a fixed-variance Gaussian one)."""
  likelihood = modality.likelihood
  return keras.Sequential(
    [
      keras.layers.Dense(likelihood.params_size(modality.shape), name="params", dtype=HEAD_DTYPE),
      likelihood.distribution_layer(modality.shape, variance),
    ],
    name=name,
  )


class Decoder(keras.Model):
  """p(modality | z[, condition]): body network then a TFP distribution head.

  Calling it returns a tfp Distribution over the modality (batch shape [B]).
  """

  def __init__(
    self,
    body: keras.layers.Layer,
    modality: Modality,
    head: Optional[keras.layers.Layer] = None,
    name: str = "decoder",
  ):
    super().__init__(name=name)
    self.modality = modality
    self.body = body
    self.head = head if head is not None else distribution_head(modality)

  def call(self, z, training=None):
    return self.head(self.body(z, training=training), training=training)


class ChannelGroupsToFlat(keras.layers.Layer):
  """[B, H, W, k*C] -> [B, k*H*W*C], group by group.

  The TFP layers read flat parameters, k blocks of H*W*C (e.g. loc then scale for
  IndependentNormal); splitting channels first keeps each pixel's k parameters at the
  same spatial position of the convolution's output.
  """

  def __init__(self, groups: int, **kwargs):
    super().__init__(**kwargs)
    self.groups = groups

  def call(self, inputs):
    batch = tf.shape(inputs)[0]
    parts = tf.split(inputs, self.groups, axis=-1) if self.groups > 1 else [inputs]
    flat = [tf.reshape(p, [batch, -1]) for p in parts]
    return flat[0] if len(flat) == 1 else tf.concat(flat, axis=-1)

  def get_config(self):
    return {**super().get_config(), "groups": self.groups}


class Discriminator(keras.Model):
  """D(x) of a VAE-GAN: `call` returns (logit [B], features [B, F]).

  D(x) = sigmoid(logit) is the probability that x is real; the losses take the logit
  (log-sigmoid is exact where sigmoid would round to 0 or 1). The features, the last
  convolution's output, are the Dis_l(x) that Larsen et al.'s learned similarity compares.
  """

  def __init__(self, features: keras.layers.Layer, classifier: keras.layers.Layer, name: str):
    super().__init__(name=name)
    self.features = features
    self.classifier = classifier

  def call(self, x, training=None):
    h = self.features(x, training=training)
    return self.classifier(h, training=training)[:, 0], h
