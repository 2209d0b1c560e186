"""Modalities: what the models need to know about each kind of input.

A modality is named (the key of the input dict), has a likelihood (`jmvae_tf.likelihoods`:
what its values are and how its decoder ends) and an event shape. The pipelines produce dicts
keyed by the same names; nothing else couples them, and only the data sets name modalities.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence, Tuple, Union

from jmvae_tf import likelihoods
from jmvae_tf.likelihoods import Likelihood


@dataclasses.dataclass(frozen=True)
class Modality:
  """One modality: `name` keys the input dict, `likelihood` (or its kind's name) picks the
  decoder's distribution."""

  name: str
  likelihood: Union[Likelihood, str]
  shape: Tuple[int, ...]

  def __post_init__(self):
    try:
      object.__setattr__(self, "likelihood", likelihoods.get(self.likelihood))
    except ValueError as e:
      raise ValueError(f"modality {self.name!r}: {e}") from None
    object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
    if not self.shape or any(d <= 0 for d in self.shape):
      raise ValueError(f"modality {self.name!r}: shape {self.shape} must be non-empty and positive")
    self.likelihood.check_shape(self.name, self.shape)

  @property
  def kind(self) -> str:
    return self.likelihood.kind

  @property
  def size(self) -> int:
    """Number of scalars in one example (the flattened size)."""
    return math.prod(self.shape)

  @property
  def is_image(self) -> bool:
    """Rank 3 (height, width, channels): convolutional networks, pictures."""
    return len(self.shape) == 3

  def to_dict(self) -> dict:
    return {"name": self.name, "kind": self.kind, "shape": list(self.shape)}

  @classmethod
  def from_dict(cls, d: dict) -> "Modality":
    return cls(d["name"], d["kind"], tuple(d["shape"]))


def by_name(modalities: Sequence[Modality], name: str) -> Modality:
  for m in modalities:
    if m.name == name:
      return m
  raise ValueError(f"no modality named {name!r}; have {[m.name for m in modalities]}")


def subset_name(names: Sequence[str], separator: str = "+") -> str:
  """A set of modalities as one name, sorted: "image+label"."""
  return separator.join(sorted(names))
