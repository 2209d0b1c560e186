"""The paper's MNIST networks (section 4.2): D512R-D512R branches, decoders and
conditionals, for image and vector modalities alike (read flattened)."""

from __future__ import annotations

import tf_keras as keras

from jmvae_tf.core.likelihoods import FIXED_VARIANCE, HEAD_DTYPE
from jmvae_tf.core.modalities import IMAGE, VECTOR, Modality
from jmvae_tf.core.options import DISCRIMINATOR_STYLES
from jmvae_tf.networks.architecture import Architecture, FamilyNetworks
from jmvae_tf.networks.blocks import (
  LEAKY_RELU_SLOPE,
  Decoder,
  Discriminator,
  GaussianConditional,
  distribution_head,
  mlp,
)

MNIST_HIDDEN = (512, 512)


def mnist_branch(modality: Modality, name: str) -> keras.layers.Layer:
  """D512R-D512R on one modality (flattened)."""
  return mlp(MNIST_HIDDEN, name=name)


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


def mnist_discriminator(modality: Modality, name: str, style: str = "paper") -> Discriminator:
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


# An MLP reads any modality flattened: images and vectors alike.
_MLP = FamilyNetworks(mnist_branch, mnist_decoder)
MNIST_MLP = Architecture(
  "mnist_mlp",
  families={IMAGE: _MLP, VECTOR: _MLP},
  conditional=mnist_conditional,
  features=mnist_top_features,
  discriminator=mnist_discriminator,
)
