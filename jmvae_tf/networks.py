"""Architectures: encoders that output a diagonal Gaussian, and decoders whose last
layer is a TFP distribution layer.

These know nothing of objectives. The MNIST networks follow section 4.2 of the
paper (see `mnist_*` builders); other data sets plug in other branch/body
networks (e.g. convolutional ones) through the same two classes.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf
import tf_keras as keras

from jmvae_tf import gaussian
from jmvae_tf.likelihoods import FIXED_VARIANCE, HEAD_DTYPE
from jmvae_tf.modalities import Modality
from jmvae_tf.options import DISCRIMINATOR_STYLES

MNIST_HIDDEN = (512, 512)


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


# --- The paper's MNIST architectures (section 4.2) --------------------------------------


def mnist_branch(modality: Modality, name: str) -> keras.layers.Layer:
  """D512R-D512R on one modality (flattened)."""
  return mlp(MNIST_HIDDEN, name=name)


def mnist_encoder(modalities: Sequence[Modality], latent_dim: int, name: str) -> GaussianEncoder:
  """q(z|x,w) over `modalities`: (D512R-D512R per modality) concatenated, D{latent} heads."""
  return GaussianEncoder(
    {m.name: mnist_branch(m, f"{m.name}_branch") for m in modalities}, latent_dim, name=name
  )


def mnist_decoder(modality: Modality, name: str, variance: float = FIXED_VARIANCE) -> Decoder:
  """p(x|z): D512R-D512R then D{size} and the modality's distribution layer."""
  head = distribution_head(modality, variance=variance)
  return Decoder(mlp(MNIST_HIDDEN, name=f"{name}_body"), modality, head=head, name=name)


def mnist_conditional(latent_dim: int, name: str) -> GaussianConditional:
  """p(z_1|z_2) or a conditional prior: D512R-D512R, D{latent} heads."""
  return GaussianConditional(mlp(MNIST_HIDDEN, name=f"{name}_body"), latent_dim, name=name)


def mnist_top_features(name: str) -> keras.layers.Layer:
  """The hierarchy's second deterministic layer h_2 = D512R-D512R(h_1)."""
  return mlp(MNIST_HIDDEN, name=name, flatten=False)


def mnist_discriminator(modality: Modality, name: str, style: str = "paper") -> "Discriminator":
  """D512R-D512R-D1 (sigmoid) on the flattened image, for a VAE-GAN on MNIST-sized data (the
  paper has none); style "authors": leaky ReLU. Its features are the second layer's."""
  if style not in DISCRIMINATOR_STYLES:
    raise ValueError(f"discriminator style must be one of {DISCRIMINATOR_STYLES}, got {style!r}")
  leaky = style == "authors"
  layers = [keras.layers.Flatten(name="flatten")]
  for i, h in enumerate(MNIST_HIDDEN):
    layers.append(keras.layers.Dense(h, name=f"dense_{i}"))
    layers.append(
      keras.layers.LeakyReLU(LEAKY_RELU_SLOPE, name=f"leaky_relu_{i}")
      if leaky
      else keras.layers.ReLU(name=f"relu_{i}")
    )
  classifier = keras.Sequential(
    [keras.layers.Dense(1, name="logit", dtype=HEAD_DTYPE)], name=f"{name}_classifier"
  )
  return Discriminator(keras.Sequential(layers, name=f"{name}_features"), classifier, name=name)


@dataclasses.dataclass(frozen=True)
class Architecture:
  """The network builders an objective asks for; one instance per data set's networks."""

  name: str
  encoder: Callable[[Sequence[Modality], int, str], GaussianEncoder]
  decoder: Callable[[Modality, str], Decoder]
  conditional: Callable[[int, str], GaussianConditional]
  features: Callable[[str], keras.layers.Layer]
  # (image modality, name, style) -> Discriminator; only the VAE-GAN asks for one.
  discriminator: Optional[Callable[[Modality, str, str], "Discriminator"]] = None


MNIST_MLP = Architecture(
  "mnist_mlp",
  mnist_encoder,
  mnist_decoder,
  mnist_conditional,
  mnist_top_features,
  mnist_discriminator,
)
ARCHITECTURES = {MNIST_MLP.name: MNIST_MLP}


def get_architecture(name: str) -> Architecture:
  if name not in ARCHITECTURES:
    raise ValueError(f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}")
  return ARCHITECTURES[name]


def with_decoder_variance(architecture: Architecture, variance: float) -> Architecture:
  """`architecture` whose decoders give fixed-variance Gaussian modalities `variance`
  (the other likelihoods have no fixed variance and are unchanged)."""
  if variance == FIXED_VARIANCE:
    return architecture
  return dataclasses.replace(
    architecture, decoder=functools.partial(architecture.decoder, variance=variance)
  )


# --- The paper's CelebA architectures (section 4.2) -------------------------------------
# Notation as in the paper: C = conv 4x4 stride 2, DC = its transpose, B = batch norm,
# R = ReLU, F = flatten. Branches are chosen by a modality's shape (rank-3 = image), not its
# name, so the same builders serve any pair of image and vector modalities.

CELEBA_KERNEL = 4
CELEBA_CONV_CHANNELS = (64, 128, 256, 256)  # C64R-C128BR-C256BR-C256BR
CELEBA_DECONV_CHANNELS = (256, 128, 64)  # DC256BR-DC128BR-DC64BR, then the DC{C} head
CELEBA_DECODER_SEED_CHANNELS = 256  # D4096R reshaped to 4x4x256
CELEBA_VECTOR_HIDDEN = 512  # D512R-D512BR (encoder), D512BR (decoder)
CELEBA_DECODER_DENSE = 4096
CELEBA_TRUNK = 1024  # the D1024R after the branches
# Four stride-2 up-convolutions: the decoder starts from an (H/16, W/16) grid.
CELEBA_UPSAMPLING = 2 ** (len(CELEBA_DECONV_CHANNELS) + 1)


def _conv(channels: int, name: str, transpose: bool = False, **kwargs) -> keras.layers.Layer:
  """4x4 stride-2 'same' (de)convolution: pad 1, so 64 -> 32 (or 32 -> 64)."""
  cls = keras.layers.Conv2DTranspose if transpose else keras.layers.Conv2D
  return cls(channels, CELEBA_KERNEL, strides=2, padding="same", name=name, **kwargs)


def _bn_relu(i: int):
  """B then R; Sequential passes `training` on, so BN uses batch statistics only in training."""
  return [keras.layers.BatchNormalization(name=f"bn_{i}"), keras.layers.ReLU(name=f"relu_{i}")]


def celeba_image_branch(name: str) -> keras.Sequential:
  """C64R-C128BR-C256BR-C256BR-F: BN after every convolution but the first."""
  layers = []
  for i, channels in enumerate(CELEBA_CONV_CHANNELS):
    if i == 0:
      layers.append(_conv(channels, f"conv_{i}", activation="relu"))
    else:
      layers += [_conv(channels, f"conv_{i}")] + _bn_relu(i)
  layers.append(keras.layers.Flatten(name="flatten"))
  return keras.Sequential(layers, name=name)


def celeba_vector_branch(name: str) -> keras.Sequential:
  """D512R-D512BR on a (flattened) vector modality such as the 40 attributes."""
  hidden = CELEBA_VECTOR_HIDDEN
  return keras.Sequential(
    [
      keras.layers.Flatten(name="flatten"),
      keras.layers.Dense(hidden, activation="relu", name="dense_0"),
      keras.layers.Dense(hidden, name="dense_1"),
    ]
    + _bn_relu(1),
    name=name,
  )


def celeba_branch(modality: Modality, name: str) -> keras.layers.Layer:
  return celeba_image_branch(name) if modality.is_image else celeba_vector_branch(name)


def celeba_encoder(modalities: Sequence[Modality], latent_dim: int, name: str) -> GaussianEncoder:
  """(branch per modality)-D1024R, D{latent} heads: q(z|x,w) with both modalities,
  JMVAE-kl's q(z|x) = C64R-...-F-D1024R or q(z|w) = D512R-D512BR-D1024R with one."""
  trunk = keras.layers.Dense(CELEBA_TRUNK, activation="relu", name=f"{name}_trunk")
  return GaussianEncoder(
    {m.name: celeba_branch(m, f"{m.name}_branch") for m in modalities},
    latent_dim,
    trunk=trunk,
    name=name,
  )


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


def conv_distribution_head(
  modality: Modality, name: str = "head", variance: float = FIXED_VARIANCE
) -> keras.Sequential:
  """The last up-convolution (the paper's DC3 f_mu) and the distribution layer.

  The convolution itself gives the parameters (the likelihood's `conv_groups` per element), so
  unlike `distribution_head` there is no Dense over H*W*C outputs; like it, parameters and
  likelihood stay in HEAD_DTYPE.
  """
  likelihood = modality.likelihood
  groups = likelihood.conv_groups
  if groups is None:
    raise ValueError(
      f"no convolutional decoder head for {modality.name!r} of kind {modality.kind!r}"
    )
  params = _conv(groups * modality.shape[-1], "params", transpose=True, dtype=HEAD_DTYPE)
  flat = ChannelGroupsToFlat(groups, name="flat_params", dtype=HEAD_DTYPE)
  return keras.Sequential(
    [params, flat, likelihood.distribution_layer(modality.shape, variance)], name=name
  )


def celeba_image_decoder_body(modality: Modality, name: str) -> keras.Sequential:
  """D{H/16*W/16*256}R -> reshape (H/16, W/16, 256) -> DC256BR-DC128BR-DC64BR.

  For 64x64 images this is the paper's D4096R and 4x4x256 start.
  """
  height, width, _ = modality.shape
  if height % CELEBA_UPSAMPLING or width % CELEBA_UPSAMPLING:
    raise ValueError(
      f"the convolutional decoder upsamples by {CELEBA_UPSAMPLING}, so "
      f"{modality.name!r} needs height and width divisible by "
      f"{CELEBA_UPSAMPLING}; got shape {modality.shape}"
    )
  grid = (height // CELEBA_UPSAMPLING, width // CELEBA_UPSAMPLING, CELEBA_DECODER_SEED_CHANNELS)
  layers = [
    keras.layers.Flatten(name="flatten"),
    keras.layers.Dense(grid[0] * grid[1] * grid[2], activation="relu", name="dense_0"),
    keras.layers.Reshape(grid, name="reshape"),
  ]
  for i, channels in enumerate(CELEBA_DECONV_CHANNELS):
    layers += [_conv(channels, f"deconv_{i}", transpose=True)] + _bn_relu(i)
  return keras.Sequential(layers, name=name)


def celeba_vector_decoder_body(name: str) -> keras.Sequential:
  """D4096R-D512BR; the D{size} parameters are the distribution head's Dense."""
  return keras.Sequential(
    [
      keras.layers.Flatten(name="flatten"),
      keras.layers.Dense(CELEBA_DECODER_DENSE, activation="relu", name="dense_0"),
      keras.layers.Dense(CELEBA_VECTOR_HIDDEN, name="dense_1"),
    ]
    + _bn_relu(1),
    name=name,
  )


def celeba_decoder(modality: Modality, name: str, variance: float = FIXED_VARIANCE) -> Decoder:
  """p(x|z) = D4096R-DC256BR-DC128BR-DC64BR-DC3 or p(w|z) = D4096R-D512BR-D40, each with
  the modality's likelihood (the paper's CelebA: tanh mean, variance 1)."""
  if modality.is_image:
    return Decoder(
      celeba_image_decoder_body(modality, f"{name}_body"),
      modality,
      head=conv_distribution_head(modality, variance=variance),
      name=name,
    )
  head = distribution_head(modality, variance=variance)
  return Decoder(celeba_vector_decoder_body(f"{name}_body"), modality, head=head, name=name)


def celeba_conditional(latent_dim: int, name: str) -> GaussianConditional:
  """p(z_1|z_2) (hierarchical JMVAE): D1024R-D1024R, D{latent} heads."""
  return GaussianConditional(
    mlp((CELEBA_TRUNK, CELEBA_TRUNK), name=f"{name}_body"), latent_dim, name=name
  )


def celeba_top_features(name: str) -> keras.layers.Layer:
  """The hierarchy's second deterministic layer h_2 = D1024R(h_1)."""
  return mlp((CELEBA_TRUNK,), name=name, flatten=False)


# --- The VAE-GAN's discriminator (section 4.6.3, after Larsen et al. 2016) ---------------

LEAKY_RELU_SLOPE = 0.2


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


def celeba_discriminator(modality: Modality, name: str, style: str = "paper") -> Discriminator:
  """C64R-C128BR-C256BR-C256BR-F-D1024R-D1 (sigmoid), the paper's; style "authors": their
  code's leaky ReLU (slope 0.2) everywhere and no BatchNorm."""
  if style not in DISCRIMINATOR_STYLES:
    raise ValueError(f"discriminator style must be one of {DISCRIMINATOR_STYLES}, got {style!r}")
  if not modality.is_image:
    raise ValueError(f"the discriminator reads an image; {modality.name!r} is {modality.shape}")
  leaky = style == "authors"

  def activation(i):
    if leaky:
      return keras.layers.LeakyReLU(LEAKY_RELU_SLOPE, name=f"leaky_relu_{i}")
    return keras.layers.ReLU(name=f"relu_{i}")

  layers = []
  for i, channels in enumerate(CELEBA_CONV_CHANNELS):
    layers.append(_conv(channels, f"conv_{i}"))
    if i > 0 and not leaky:
      layers.append(keras.layers.BatchNormalization(name=f"bn_{i}"))
    layers.append(activation(i))
  layers.append(keras.layers.Flatten(name="flatten"))
  n = len(CELEBA_CONV_CHANNELS)
  classifier = keras.Sequential(
    [
      keras.layers.Dense(CELEBA_TRUNK, name="dense_0"),
      activation(n),
      keras.layers.Dense(1, name="logit", dtype=HEAD_DTYPE),
    ],
    name=f"{name}_classifier",
  )
  return Discriminator(keras.Sequential(layers, name=f"{name}_features"), classifier, name=name)


CELEBA_CONV = Architecture(
  "celeba_conv",
  celeba_encoder,
  celeba_decoder,
  celeba_conditional,
  celeba_top_features,
  celeba_discriminator,
)
ARCHITECTURES[CELEBA_CONV.name] = CELEBA_CONV
