"""Networks for any data set: MLPs for vectors, convolutions for images of any size.

`generic_architecture(**options)` builds the architecture "generic", the default of the
`files` data set and of users' arrays. The paper's networks (`mnist_mlp`, `celeba_conv`) stay
those of their data sets.

Images. A branch is `depth` 4x4 stride-2 convolutions (ReLU), then flattened; the decoder
mirrors it: a dense layer to a (H/2^depth, W/2^depth) grid, then up-convolutions, the last of
which gives the likelihood's parameters per pixel. The rule for `depth` (option "depth",
default "auto"): as many halvings as keep both sides whole and at least 4 pixels, at most 5:
  28x28 -> 2 (7x7), 32x32 -> 3 (4x4), 64x64 -> 4 (4x4), 128x128 -> 5 (4x4), 96x64 -> 4,
  an odd size -> 0 (an MLP on the flattened pixels, as the paper's MNIST networks).
Channels start at "channels" (default 32) and double each layer up to "max_channels" (256).

Vectors (and a class, attributes): an MLP with "hidden" units (default 512x512, the paper's
MNIST D512R-D512R). The hierarchy's conditionals and deterministic layers use the same MLP.

Options are strings as on the command line (`--architecture_options=hidden=256x256,depth=3`)
or the same values from Python (`hidden=(256, 256)`); run.json records them, canonical, so
whatever reads the run builds the same networks.
"""

from __future__ import annotations

from typing import Dict, Mapping, Tuple

import tf_keras as keras

from jmvae_tf.core.likelihoods import FIXED_VARIANCE, HEAD_DTYPE
from jmvae_tf.core.modalities import IMAGE, VECTOR, Modality
from jmvae_tf.networks.architecture import Architecture, FamilyNetworks
from jmvae_tf.networks.blocks import (
  ChannelGroupsToFlat,
  Decoder,
  GaussianConditional,
  distribution_head,
  mlp,
)

NAME = "generic"
KERNEL = 4
MIN_GRID = 4  # the smallest side a branch halves an image down to
MAX_DEPTH = 5
DEFAULTS = {"hidden": "512x512", "channels": "32", "max_channels": "256", "depth": "auto"}


def image_depth(height: int, width: int, limit: int = MAX_DEPTH) -> int:
  """Stride-2 layers for an image of height x width: as many halvings as keep both sides
  whole and at least MIN_GRID pixels, at most `limit`."""
  depth = 0
  while (
    depth < limit and height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= MIN_GRID
  ):
    height, width, depth = height // 2, width // 2, depth + 1
  return depth


def _ints(key: str, value) -> Tuple[int, ...]:
  """ "512x512", "512", 512 or (512, 512) -> (512, 512); a ValueError naming the option."""
  if isinstance(value, int):
    value = (value,)
  parts = value.split("x") if isinstance(value, str) else list(value)
  try:
    numbers = tuple(int(p) for p in parts)
  except (TypeError, ValueError):
    numbers = ()
  if not numbers or any(n < 1 for n in numbers):
    raise ValueError(
      f"architecture option {key}={value!r}: expected positive whole numbers (e.g. 512x512)"
    )
  return numbers


def parse_options(options: Mapping[str, object]) -> Dict[str, object]:
  """The options checked and typed: hidden (tuple), channels, max_channels (ints), depth
  ("auto" or an int); a ValueError naming an unknown or bad one."""
  unknown = sorted(set(options) - set(DEFAULTS))
  if unknown:
    raise ValueError(
      f"architecture {NAME!r} has no option {', '.join(unknown)}; it has {sorted(DEFAULTS)}"
    )
  given = {**DEFAULTS, **options}
  parsed = {
    "hidden": _ints("hidden", given["hidden"]),
    "channels": _ints("channels", given["channels"])[0],
    "max_channels": _ints("max_channels", given["max_channels"])[0],
  }
  depth = given["depth"]
  if depth != "auto":
    depth = _ints("depth", depth)[0] if depth not in (0, "0") else 0
  parsed["depth"] = depth
  return parsed


def canonical(options: Mapping[str, object]) -> Tuple[str, ...]:
  """The options as run.json records them: "key=value", sorted, every one (the defaults
  too, so that a run rebuilds its networks even if a default changes)."""
  parsed = parse_options(options)
  text = {
    "hidden": "x".join(str(n) for n in parsed["hidden"]),
    "channels": str(parsed["channels"]),
    "max_channels": str(parsed["max_channels"]),
    "depth": str(parsed["depth"]),
  }
  return tuple(sorted(f"{k}={v}" for k, v in text.items()))


def generic_architecture(**options) -> Architecture:
  """The architecture "generic" with `options` (module docstring)."""
  o = parse_options(options)
  hidden, channels, max_channels, depth_option = (
    o["hidden"],
    o["channels"],
    o["max_channels"],
    o["depth"],
  )

  def depth_of(modality: Modality) -> int:
    height, width = modality.shape[0], modality.shape[1]
    auto = image_depth(height, width)
    if depth_option == "auto":
      return auto
    if depth_option > image_depth(height, width, limit=depth_option + 1):
      raise ValueError(
        f"architecture option depth={depth_option}: modality {modality.name!r} of shape "
        f"{modality.shape} can be halved {image_depth(height, width, 99)} times at most"
      )
    return depth_option

  def widths(depth: int) -> Tuple[int, ...]:
    return tuple(min(channels * 2**i, max_channels) for i in range(depth))

  def image_branch(modality: Modality, name: str) -> keras.layers.Layer:
    if depth_of(modality) == 0:  # a size that does not halve: the MLP on the pixels
      return mlp(hidden, name=name)
    layers = [
      keras.layers.Conv2D(c, KERNEL, 2, "same", activation="relu", name=f"conv_{i}")
      for i, c in enumerate(widths(depth_of(modality)))
    ]
    return keras.Sequential(layers + [keras.layers.Flatten(name="flatten")], name=name)

  def image_decoder(modality: Modality, name: str, variance: float = FIXED_VARIANCE) -> Decoder:
    depth = depth_of(modality)
    if depth == 0 or modality.likelihood.conv_groups is None:
      body = mlp(hidden, name=f"{name}_body")
      return Decoder(body, modality, head=distribution_head(modality, variance=variance), name=name)
    height, width, _ = modality.shape
    scale = 2**depth
    grid = (height // scale, width // scale, widths(depth)[-1])
    layers = [
      keras.layers.Flatten(name="flatten"),
      keras.layers.Dense(grid[0] * grid[1] * grid[2], activation="relu", name="dense_0"),
      keras.layers.Reshape(grid, name="reshape"),
    ]
    for i, c in enumerate(reversed(widths(depth)[:-1])):
      layers.append(
        keras.layers.Conv2DTranspose(c, KERNEL, 2, "same", activation="relu", name=f"deconv_{i}")
      )
    likelihood = modality.likelihood
    groups = likelihood.conv_groups
    head = keras.Sequential(
      [
        keras.layers.Conv2DTranspose(
          groups * modality.shape[-1], KERNEL, 2, "same", name="params", dtype=HEAD_DTYPE
        ),
        ChannelGroupsToFlat(groups, name="flat_params", dtype=HEAD_DTYPE),
        likelihood.distribution_layer(modality.shape, variance),
      ],
      name="head",
    )
    return Decoder(keras.Sequential(layers, name=f"{name}_body"), modality, head=head, name=name)

  def vector_branch(modality: Modality, name: str) -> keras.layers.Layer:
    return mlp(hidden, name=name)

  def vector_decoder(modality: Modality, name: str, variance: float = FIXED_VARIANCE) -> Decoder:
    head = distribution_head(modality, variance=variance)
    return Decoder(mlp(hidden, name=f"{name}_body"), modality, head=head, name=name)

  def conditional(latent_dim: int, name: str) -> GaussianConditional:
    return GaussianConditional(mlp(hidden, name=f"{name}_body"), latent_dim, name=name)

  def features(name: str) -> keras.layers.Layer:
    return mlp(hidden, name=name, flatten=False)

  return Architecture(
    NAME,
    families={
      IMAGE: FamilyNetworks(image_branch, image_decoder),
      VECTOR: FamilyNetworks(vector_branch, vector_decoder),
    },
    conditional=conditional,
    features=features,
    options=canonical(options),
  )
