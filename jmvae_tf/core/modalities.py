"""Modalities: what the models need to know about each kind of input.

A modality is named (the key of the input dict), has a likelihood (`jmvae_tf.core.likelihoods`:
what its values are and how its decoder ends), an event shape and a network family: what kind
of network reads and generates it. Every layer asks the family, never the shape's rank:
  image   [height, width, channels]: convolutions where the architecture has them, pictures
          in TensorBoard and figures, an image classifier for coherence
  vector  any shape, read flattened: MLPs; a class or attributes for coherence
  sequence  tokens [T, V] (a caption): embeddings and 1-D convolutions
          (`jmvae_tf.networks.sequence`, for every architecture), captions in figures
A plug-in adds a family with `register_family` and its networks with
`jmvae_tf.register_family_networks`. The pipelines produce dicts keyed by the modality
names; nothing else couples them, and only the data sets name modalities.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional, Sequence, Tuple, Union

from jmvae_tf.core import likelihoods, plugins
from jmvae_tf.core.likelihoods import Likelihood

IMAGE = "image"
VECTOR = "vector"
SEQUENCE = "sequence"


@dataclasses.dataclass(frozen=True)
class Family:
  """A network family: `about` says what its modalities are; `check_shape(modality name,
  shape)` raises a ValueError for a shape its networks cannot read (None: any shape)."""

  name: str
  about: str
  check_shape: Optional[Callable[[str, Tuple[int, ...]], None]] = None


def _image_shape(name: str, shape: Tuple[int, ...]) -> None:
  if len(shape) != 3:
    raise ValueError(
      f"modality {name!r} of the image family needs shape (height, width, channels), got {shape}"
    )


def _sequence_shape(name: str, shape: Tuple[int, ...]) -> None:
  if len(shape) != 2:
    raise ValueError(
      f"modality {name!r} of the sequence family needs shape (positions, vocabulary), got {shape}"
    )


FAMILIES = plugins.Registry(
  "network family",
  {
    IMAGE: Family(IMAGE, "pictures [height, width, channels]", _image_shape),
    VECTOR: Family(VECTOR, "values of any shape, read flattened"),
    SEQUENCE: Family(SEQUENCE, "token sequences [positions, vocabulary]", _sequence_shape),
  },
)


def register_family(name: str, about: str, check_shape=None, replace: bool = False) -> Family:
  """Adds a network family (e.g. "sequence"), for modalities that need networks of their own
  (`jmvae_tf.register_family_networks`). Returns it."""
  family = Family(name, about, check_shape)
  return FAMILIES.register(name, family, plugins.calling_module(), replace=replace)


@dataclasses.dataclass(frozen=True)
class Modality:
  """One modality: `name` keys the input dict, `likelihood` (or its kind's name) picks the
  decoder's distribution, `family` the networks (default: the likelihood's own, where it has
  one; a categorical modality is a vector; a Bernoulli or Gaussian one must say whether it
  is an image or a vector). `vocabulary`: a text modality's tokens, one per column of its
  last axis (`jmvae_tf.core.text.Vocabulary.tokens`), so that captions read and write as
  strings; None for every other modality."""

  name: str
  likelihood: Union[Likelihood, str]
  shape: Tuple[int, ...]
  family: Optional[str] = None
  vocabulary: Optional[Tuple[str, ...]] = None

  def __post_init__(self):
    try:
      object.__setattr__(self, "likelihood", likelihoods.get(self.likelihood))
    except ValueError as e:
      raise ValueError(f"modality {self.name!r}: {e}") from None
    object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
    if not self.shape or any(d <= 0 for d in self.shape):
      raise ValueError(f"modality {self.name!r}: shape {self.shape} must be non-empty and positive")
    self.likelihood.check_shape(self.name, self.shape)
    family = self.family if self.family is not None else self.likelihood.default_family
    if family is None:
      raise ValueError(
        f"modality {self.name!r}: say its network family (family={IMAGE!r} or {VECTOR!r}, or "
        f"a registered one: {list(FAMILIES.names())}); kind {self.kind!r} serves several"
      )
    try:
      checker = FAMILIES.get(family).check_shape
    except ValueError as e:
      raise ValueError(f"modality {self.name!r}: {e}") from None
    if checker is not None:
      checker(self.name, self.shape)
    object.__setattr__(self, "family", family)
    if self.vocabulary is not None:
      self._check_vocabulary()

  def _check_vocabulary(self) -> None:
    from jmvae_tf.core import text  # TensorFlow: only for a modality that has text

    tokens = tuple(str(t) for t in self.vocabulary)
    if not self.likelihood.reads_text:
      raise ValueError(f"modality {self.name!r}: a {self.kind} modality has no vocabulary")
    if self.shape[0] < text.MIN_TOKENS:
      raise ValueError(
        f"modality {self.name!r}: a caption needs at least {text.MIN_TOKENS} positions (a word "
        f"and {text.EOS}), got shape {self.shape}"
      )
    if len(tokens) != self.shape[-1]:
      raise ValueError(
        f"modality {self.name!r}: a vocabulary of {len(tokens)} tokens for {self.shape[-1]} "
        "columns; they must be equal"
      )
    try:
      text.check_tokens(tokens)
    except text.TextError as e:
      raise ValueError(f"modality {self.name!r}: {e}") from None
    object.__setattr__(self, "vocabulary", tokens)

  @property
  def text(self):
    """The `jmvae_tf.core.text.Vocabulary` of a modality with one, else None."""
    if self.vocabulary is None:
      return None
    from jmvae_tf.core import text

    return text.Vocabulary(self.vocabulary, self.shape[0])

  @property
  def kind(self) -> str:
    return self.likelihood.kind

  @property
  def size(self) -> int:
    """Number of scalars in one example (the flattened size)."""
    return math.prod(self.shape)

  def to_dict(self) -> dict:
    d = {"name": self.name, "kind": self.kind, "shape": list(self.shape), "family": self.family}
    if self.vocabulary is not None:  # absent otherwise: run.json files stay as they were
      d["vocabulary"] = list(self.vocabulary)
    return d

  @classmethod
  def from_dict(cls, d: dict) -> "Modality":
    vocabulary = d.get("vocabulary")
    return cls(
      d["name"],
      d["kind"],
      tuple(d["shape"]),
      d.get("family"),
      None if vocabulary is None else tuple(vocabulary),
    )


def by_name(modalities: Sequence[Modality], name: str) -> Modality:
  for m in modalities:
    if m.name == name:
      return m
  raise ValueError(f"no modality named {name!r}; have {[m.name for m in modalities]}")


def subset_name(names: Sequence[str], separator: str = "+") -> str:
  """A set of modalities as one name, sorted: "image+label"."""
  return separator.join(sorted(names))
