"""The paper's CelebA networks (section 4.2) and the VAE-GAN's discriminator (section 4.6.3,
after Larsen et al. 2016)."""

from __future__ import annotations

import tf_keras as keras

from jmvae_tf.core.likelihoods import FIXED_VARIANCE, HEAD_DTYPE
from jmvae_tf.core.modalities import IMAGE, VECTOR, Modality
from jmvae_tf.core.options import DISCRIMINATOR_STYLES
from jmvae_tf.networks.architecture import Architecture, FamilyNetworks
from jmvae_tf.networks.blocks import (
  LEAKY_RELU_SLOPE,
  ChannelGroupsToFlat,
  Decoder,
  Discriminator,
  GaussianConditional,
  distribution_head,
  mlp,
)

# --- The paper's CelebA architectures (section 4.2) -------------------------------------
# Notation as in the paper: C = conv 4x4 stride 2, DC = its transpose, B = batch norm,
# R = ReLU, F = flatten. Branches and decoders are chosen by a modality's network family, not
# its name, so the same builders serve any pair of image and vector modalities.

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


def celeba_image_branch(modality: Modality, name: str) -> keras.Sequential:
  """C64R-C128BR-C256BR-C256BR-F: BN after every convolution but the first."""
  layers = []
  for i, channels in enumerate(CELEBA_CONV_CHANNELS):
    if i == 0:
      layers.append(_conv(channels, f"conv_{i}", activation="relu"))
    else:
      layers += [_conv(channels, f"conv_{i}")] + _bn_relu(i)
  layers.append(keras.layers.Flatten(name="flatten"))
  return keras.Sequential(layers, name=name)


def celeba_vector_branch(modality: Modality, name: str) -> keras.Sequential:
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


def celeba_trunk(name: str) -> keras.layers.Layer:
  """The D1024R after an encoder's branches: q(z|x,w) = (branches)-D1024R, JMVAE-kl's
  q(z|x) = C64R-...-F-D1024R and q(z|w) = D512R-D512BR-D1024R, then the D{latent} heads."""
  return keras.layers.Dense(CELEBA_TRUNK, activation="relu", name=name)


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


def celeba_image_decoder(
  modality: Modality, name: str, variance: float = FIXED_VARIANCE
) -> Decoder:
  """p(x|z) = D4096R-DC256BR-DC128BR-DC64BR-DC3 with the modality's likelihood (the paper's
  CelebA: tanh mean, variance 1)."""
  return Decoder(
    celeba_image_decoder_body(modality, f"{name}_body"),
    modality,
    head=conv_distribution_head(modality, variance=variance),
    name=name,
  )


def celeba_vector_decoder(
  modality: Modality, name: str, variance: float = FIXED_VARIANCE
) -> Decoder:
  """p(w|z) = D4096R-D512BR-D40 with the modality's likelihood."""
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


def celeba_discriminator(modality: Modality, name: str, style: str = "paper") -> Discriminator:
  """C64R-C128BR-C256BR-C256BR-F-D1024R-D1 (sigmoid), the paper's; style "authors": their
  code's leaky ReLU (slope 0.2) everywhere and no BatchNorm."""
  if style not in DISCRIMINATOR_STYLES:
    raise ValueError(f"discriminator style must be one of {DISCRIMINATOR_STYLES}, got {style!r}")
  if modality.family != IMAGE:
    raise ValueError(
      f"the discriminator reads an image; {modality.name!r} is of the {modality.family!r} family"
    )
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
  families={
    IMAGE: FamilyNetworks(celeba_image_branch, celeba_image_decoder),
    VECTOR: FamilyNetworks(celeba_vector_branch, celeba_vector_decoder),
  },
  conditional=celeba_conditional,
  features=celeba_top_features,
  trunk=celeba_trunk,
  discriminator=celeba_discriminator,
)
