"""Test helper: the streams the driver's tests feed, as a DataSet (jmvae_tf.core.data's
contract): training batches that a function of the start epoch makes (so a resumed run reads
what an uninterrupted one would), so many steps an epoch, optional held-out batches."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import tensorflow as tf

from jmvae_tf.core.data import DataError, DataSet
from jmvae_tf.core.modalities import Modality


class StreamData(DataSet):
  name = "stream"

  def __init__(
    self,
    modalities: Sequence[Modality],
    batches: Callable[[int], tf.data.Dataset],
    steps_per_epoch: int,
    held_out: Optional[tf.data.Dataset] = None,
    architecture: str = "mnist_mlp",
  ):
    self._modalities, self._batches = tuple(modalities), batches
    self._steps, self._held_out, self.architecture = steps_per_epoch, held_out, architecture

  @property
  def modalities(self):
    return self._modalities

  def num_examples(self, split):
    return 0  # not known: nothing is recorded of the data

  def steps_per_epoch(self, batch_size):
    return self._steps

  def check_batch_size(self, batch_size):
    pass

  def has_held_out(self):
    return self._held_out is not None

  def held_out_split(self):
    return "test"

  def train_dataset(self, batch_size, seed, start_epoch=0):
    return self._batches(start_epoch)

  def eval_dataset(self, split, batch_size, seed=0, num_examples=None):
    if self._held_out is None:
      raise DataError("no held-out batches")
    return self._held_out

  def display_images(self, split, num_examples, seed=0):
    raise DataError("no pictures")

  def metadata(self, split, num_examples):
    raise DataError("no metadata")
