"""Modalities: what the models need to know about each kind of input.

A modality is named (the key of the input dict), has a likelihood kind and an
event shape. The pipelines produce dicts keyed by the same names; nothing else
couples them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence, Tuple

BERNOULLI = "bernoulli"  # binary data, e.g. binarised MNIST pixels
CATEGORICAL = "categorical"  # one-hot data, e.g. class labels
GAUSSIAN = "gaussian"  # real data with a learned diagonal variance
GAUSSIAN_FIXED = "gaussian_fixed"  # real data, tanh mean, variance fixed to 1 (the paper's CelebA)
KINDS = (BERNOULLI, CATEGORICAL, GAUSSIAN, GAUSSIAN_FIXED)


@dataclasses.dataclass(frozen=True)
class Modality:
  """One modality: `name` keys the input dict, `kind` picks the decoder."""

  name: str
  kind: str
  shape: Tuple[int, ...]

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"modality {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
    object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
    if not self.shape or any(d <= 0 for d in self.shape):
      raise ValueError(f"modality {self.name!r}: shape {self.shape} must be non-empty and positive")

  @property
  def size(self) -> int:
    """Number of scalars in one example (the flattened size)."""
    return math.prod(self.shape)

  def to_dict(self) -> dict:
    return {"name": self.name, "kind": self.kind, "shape": list(self.shape)}

  @classmethod
  def from_dict(cls, d: dict) -> "Modality":
    return cls(d["name"], d["kind"], tuple(d["shape"]))


def mnist_modalities(num_classes: int = 10, image_shape=(28, 28, 1)) -> Tuple[Modality, Modality]:
  """The paper's MNIST pair: x = binarised image, w = one-hot label."""
  return (Modality("image", BERNOULLI, image_shape), Modality("label", CATEGORICAL, (num_classes,)))


def by_name(modalities: Sequence[Modality], name: str) -> Modality:
  for m in modalities:
    if m.name == name:
      return m
  raise ValueError(f"no modality named {name!r}; have {[m.name for m in modalities]}")
