"""Data sets as plug-ins: the one interface every data set implements.

A data set says what its modalities are (name, kind, shape), which network
architecture fits them, and gives tf.data pipelines of dicts keyed by modality
name: an infinite, reproducible training stream and finite, ordered held-out
streams with the test-time preprocessing (e.g. MNIST's fixed-seed binarisation).
It knows nothing of models. Runners pick one by name (`--dataset`) through
`pipelines.registry`; adding a data set is a module here, a flagfile in
configs/ and one registry line.

Construction reads and checks the data, so a bad `data_dir` fails with one line
(`DataError`) before any model is built or anything is written.
"""

from __future__ import annotations

import abc
import hashlib
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from jmvae_tf.core.modalities import Modality

SPLITS = ("train", "validation", "test")


def digest(*arrays: np.ndarray) -> str:
  """A short hex digest of the arrays' shapes, types and bytes."""
  h = hashlib.blake2b(digest_size=8)
  for a in arrays:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.data)
  return h.hexdigest()


class DataError(ValueError):
  """The data set is missing, incomplete, inconsistent or asked for something it lacks."""


class DataSet(abc.ABC):
  """A paired multimodal data set.

  Subclasses set `name` (the registry key) and `architecture` (a name in
  `jmvae_tf.networks.ARCHITECTURES`), accept `data_dir`, `num_train` and
  `validation` in their constructor (plus their own options, which they check),
  and implement the abstract methods.
  """

  name: str = ""
  architecture: str = ""
  # What the data really is where `name` would mislead (e.g. the synthetic stand-in read as
  # celeb_a); reports print it beside any published numbers. Empty: the data set `name` says.
  provenance: str = ""

  @property
  @abc.abstractmethod
  def modalities(self) -> Tuple[Modality, ...]:
    """The modalities of every element, in the order the models see them."""

  @abc.abstractmethod
  def num_examples(self, split: str) -> int:
    """Examples in `split` ("train", "validation" or "test"; 0 for an absent split)."""

  @abc.abstractmethod
  def train_dataset(self, batch_size: int, seed: int, start_epoch: int = 0) -> tf.data.Dataset:
    """Infinite full batches for epochs start_epoch, start_epoch + 1, ...; a pure
    function of (seed, epoch, step), so a resumed run reads what it would have read."""

  @abc.abstractmethod
  def eval_dataset(
    self, split: str, batch_size: int, seed: int = 0, num_examples: Optional[int] = None
  ) -> tf.data.Dataset:
    """The first `num_examples` (default all) of `split` in order, last partial batch
    kept, with the test-time preprocessing; the same for every read and batch size."""

  @abc.abstractmethod
  def display_images(self, split: str, num_examples: int, seed: int = 0) -> np.ndarray:
    """uint8 pictures of the first examples of `split` ([N, H, W] or [N, H, W, 3]),
    for Projector sprites and figures: those of `eval_dataset(split, ..., seed)` where the
    seed decides more than the bits (a pairing)."""

  @abc.abstractmethod
  def metadata(self, split: str, num_examples: int) -> Dict[str, np.ndarray]:
    """Named columns describing the first examples of `split` (e.g. "label"), one
    value per example: the Projector's metadata."""

  def labels(self, split: str, num_examples: int) -> Optional[np.ndarray]:
    """What each of the first examples of `split` is, for coherence: its class (int [N]) or
    its attributes ({-1, 1} [N, A]); None for a data set with neither. Its classes by
    default."""
    return self.classes(split, num_examples)

  def fingerprint(self) -> Optional[str]:
    """A digest of the training examples (their content, not where they are), recorded by
    runners.train so that a resume on other data is refused; None: none is recorded."""
    return None

  def classes(self, split: str, num_examples: int) -> Optional[np.ndarray]:
    """The class (an int) of each of the first examples of `split`, for a data set whose
    examples have one (MNIST's digits); None for one whose do not."""
    return None

  # --- shared ----------------------------------------------------------------------------
  def steps_per_epoch(self, batch_size: int) -> int:
    """Full training batches per epoch."""
    return self.num_examples("train") // batch_size

  def held_out_split(self) -> str:
    """The split evaluated during training: validation when there is one, else test."""
    return "validation" if self.num_examples("validation") else "test"

  def check_split(self, split: str, num_examples: Optional[int] = None) -> int:
    """The number of examples to read from `split`; a DataError naming what is wrong."""
    if split not in SPLITS:
      raise DataError(f"{self.name}: unknown split {split!r}; choose from {SPLITS}")
    available = self.num_examples(split)
    if not available:
      raise DataError(f"{self.name}: no {split} split")
    if num_examples is None:
      return available
    if num_examples < 1 or num_examples > available:
      raise DataError(f"{self.name}: asked for {num_examples} {split} examples, it has {available}")
    return num_examples

  def check_batch_size(self, batch_size: int) -> None:
    if batch_size < 1:
      raise DataError(f"batch size must be at least 1, got {batch_size}")
    if self.steps_per_epoch(batch_size) < 1:
      raise DataError(
        f"batch size {batch_size} is larger than the {self.num_examples('train')} "
        f"training examples of {self.name}"
      )


def parse_options(text: Sequence[str]) -> Dict[str, str]:
  """`--data_options` ("key=value" items) as a dict; a DataError for a malformed item."""
  options = {}
  for item in text or ():
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
      raise DataError(f"--data_options: {item!r} is not key=value")
    options[key.strip()] = value.strip()
  return options


def check_options(name: str, options: Dict[str, str], allowed: Dict[str, Sequence[str]]) -> None:
  """Every option is known to data set `name` and has one of its allowed values."""
  for key, value in options.items():
    if key not in allowed:
      known = ", ".join(sorted(allowed)) or "none"
      raise DataError(f"--data_options: {name} has no option {key!r} (it has: {known})")
    if allowed[key] and value not in allowed[key]:
      raise DataError(
        f"--data_options: {key}={value!r} for {name}; choose from {list(allowed[key])}"
      )
