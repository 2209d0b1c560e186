"""Architectures: encoders that output a diagonal Gaussian, and decoders whose last
layer is a TFP distribution layer.

These know nothing of objectives. The MNIST networks follow section 4.2 of the
paper (see `mnist_*` builders); other data sets plug in other branch/body
networks (e.g. convolutional ones) through the same two classes.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

from jmvae_tf import gaussian
from jmvae_tf.modalities import BERNOULLI, CATEGORICAL, GAUSSIAN, GAUSSIAN_FIXED, Modality

tfd = tfp.distributions
tfpl = tfp.layers

MNIST_HIDDEN = (512, 512)
# Heads and likelihoods always compute in float32: under a mixed-precision policy only
# the hidden layers run in bfloat16/float16, and log-densities summed over 784 pixels
# or the Gaussian parameters never lose precision.
HEAD_DTYPE = "float32"


def mlp(hidden: Sequence[int], name: str, flatten: bool = True) -> keras.Sequential:
  """DkR-DkR-...: dense layers with ReLU (the paper's f_MLP); flattens its input first."""
  layers = [keras.layers.Flatten()] if flatten else []
  layers += [keras.layers.Dense(h, activation="relu", name=f"dense_{i}") for i, h in enumerate(hidden)]
  return keras.Sequential(layers, name=name)


class GaussianEncoder(keras.Model):
  """q(z | modalities): one branch per modality, concatenated, then mean/variance heads.

  With one modality this is a unimodal encoder such as JMVAE-kl's q(z|x); with all
  of them it is the joint encoder q(z|x,w). `trunk` (optional) runs on the
  concatenation before the heads (the paper's CelebA D1024R). The variance goes
  through softplus, as in the paper.
  """

  def __init__(self, branches: Dict[str, keras.layers.Layer], latent_dim: int,
               trunk: Optional[keras.layers.Layer] = None, name: str = "encoder"):
    super().__init__(name=name)
    self.modality_names = tuple(sorted(branches))
    self.branches = [branches[k] for k in self.modality_names]
    self.trunk = trunk
    self.latent_dim = latent_dim
    self.mean_head = keras.layers.Dense(latent_dim, name="mean", dtype=HEAD_DTYPE)
    self.variance_head = keras.layers.Dense(latent_dim, name="variance", dtype=HEAD_DTYPE)

  def features(self, inputs: Dict[str, tf.Tensor], training=None) -> tf.Tensor:
    """The deterministic features h that the heads read (also used by the hierarchy)."""
    parts = [branch(inputs[k], training=training) for k, branch in zip(self.modality_names, self.branches)]
    h = parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)
    if self.trunk is not None:
      h = self.trunk(h, training=training)
    return h

  def heads(self, h: tf.Tensor):
    return self.mean_head(h), gaussian.softplus_variance(self.variance_head(h))

  def call(self, inputs: Dict[str, tf.Tensor], training=None):
    """Returns (mean, variance) of q(z | inputs[modality_names])."""
    return self.heads(self.features(inputs, training=training))


class GaussianConditional(keras.Model):
  """p(z_l | z_{l+1}) or a conditional prior p(z | w): an MLP with Gaussian heads."""

  def __init__(self, body: keras.layers.Layer, latent_dim: int, name: str):
    super().__init__(name=name)
    self.body = body
    self.mean_head = keras.layers.Dense(latent_dim, name="mean", dtype=HEAD_DTYPE)
    self.variance_head = keras.layers.Dense(latent_dim, name="variance", dtype=HEAD_DTYPE)

  def call(self, inputs, training=None):
    h = self.body(inputs, training=training)
    return self.mean_head(h), gaussian.softplus_variance(self.variance_head(h))


def distribution_head(modality: Modality, name: str = "head") -> keras.Sequential:
  """Dense parameters + the TFP distribution layer for this modality's likelihood.

  convert_to_tensor_fn is the mean: when a Keras graph needs a tensor it gets the
  expected value, not a stateful sample (sampling is done explicitly, with seeds).
  """
  shape = modality.shape
  mean = tfd.Distribution.mean
  if modality.kind == BERNOULLI:
    n = tfpl.IndependentBernoulli.params_size(shape)
    dist = tfpl.IndependentBernoulli(shape, convert_to_tensor_fn=mean, name="bernoulli", dtype=HEAD_DTYPE)
  elif modality.kind == CATEGORICAL:
    if len(shape) != 1:
      raise ValueError(f"categorical modality {modality.name!r} needs shape (num_classes,), got {shape}")
    n = tfpl.OneHotCategorical.params_size(shape[0])
    dist = tfpl.OneHotCategorical(shape[0], convert_to_tensor_fn=mean, name="categorical", dtype=HEAD_DTYPE)
  elif modality.kind == GAUSSIAN:
    n = tfpl.IndependentNormal.params_size(shape)
    dist = tfpl.IndependentNormal(shape, convert_to_tensor_fn=mean, name="normal", dtype=HEAD_DTYPE)
  elif modality.kind == GAUSSIAN_FIXED:
    n = modality.size
    dist = fixed_variance_normal(shape)
  else:  # Modality validates kinds; this guards new kinds added without a head.
    raise ValueError(f"no decoder head for kind {modality.kind!r}")
  return keras.Sequential([keras.layers.Dense(n, name="params", dtype=HEAD_DTYPE), dist], name=name)


def fixed_variance_normal(shape) -> tfpl.DistributionLambda:
  """N(tanh(mu), 1) per element: the paper's CelebA likelihood (variance fixed to 1)."""
  shape = tuple(shape)
  n = len(shape)

  def make(params):
    loc = tf.tanh(tf.reshape(params, tf.concat([tf.shape(params)[:-1], shape], 0)))
    return tfd.Independent(tfd.Normal(loc, tf.ones_like(loc)), reinterpreted_batch_ndims=n)

  return tfpl.DistributionLambda(make, convert_to_tensor_fn=tfd.Distribution.mean, name="normal_fixed",
                               dtype=HEAD_DTYPE)


class Decoder(keras.Model):
  """p(modality | z[, condition]): body network then a TFP distribution head.

  Calling it returns a tfp Distribution over the modality (batch shape [B]).
  """

  def __init__(self, body: keras.layers.Layer, modality: Modality,
               head: Optional[keras.layers.Layer] = None, name: str = "decoder"):
    super().__init__(name=name)
    self.modality = modality
    self.body = body
    self.head = head if head is not None else distribution_head(modality)

  def call(self, z, training=None):
    return self.head(self.body(z, training=training), training=training)


# --- The paper's MNIST architectures (section 4.2) --------------------------------------

BranchFactory = Callable[[Modality, str], keras.layers.Layer]


def mnist_branch(modality: Modality, name: str) -> keras.layers.Layer:
  """D512R-D512R on one modality (flattened)."""
  return mlp(MNIST_HIDDEN, name=name)


def mnist_encoder(modalities: Sequence[Modality], latent_dim: int, name: str) -> GaussianEncoder:
  """q(z|x,w) over `modalities`: (D512R-D512R per modality) concatenated, D{latent} heads."""
  return GaussianEncoder({m.name: mnist_branch(m, f"{m.name}_branch") for m in modalities},
                         latent_dim, name=name)


def mnist_decoder(modality: Modality, name: str) -> Decoder:
  """p(x|z): D512R-D512R then D{size} and the modality's distribution layer."""
  return Decoder(mlp(MNIST_HIDDEN, name=f"{name}_body"), modality, name=name)


def mnist_conditional(latent_dim: int, name: str) -> GaussianConditional:
  """p(z_1|z_2) or a conditional prior: D512R-D512R, D{latent} heads."""
  return GaussianConditional(mlp(MNIST_HIDDEN, name=f"{name}_body"), latent_dim, name=name)


def mnist_top_features(name: str) -> keras.layers.Layer:
  """The hierarchy's second deterministic layer h_2 = D512R-D512R(h_1)."""
  return mlp(MNIST_HIDDEN, name=name, flatten=False)


@dataclasses.dataclass(frozen=True)
class Architecture:
  """The network builders an objective asks for; one instance per data set's networks."""

  name: str
  encoder: Callable[[Sequence[Modality], int, str], GaussianEncoder]
  decoder: Callable[[Modality, str], Decoder]
  conditional: Callable[[int, str], GaussianConditional]
  features: Callable[[str], keras.layers.Layer]


MNIST_MLP = Architecture("mnist_mlp", mnist_encoder, mnist_decoder, mnist_conditional, mnist_top_features)
ARCHITECTURES = {MNIST_MLP.name: MNIST_MLP}


def get_architecture(name: str) -> Architecture:
  if name not in ARCHITECTURES:
    raise ValueError(f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}")
  return ARCHITECTURES[name]
