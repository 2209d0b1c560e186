"""jmvae_tf/core/data.py: the --data_options parser and checker, and what every DataSet shares
(steps per epoch, the held-out split, the split and batch size checks), on a tiny data set made
here."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from jmvae_tf.core import data as data_lib
from jmvae_tf.core.data import DataError
from jmvae_tf.core.modalities import Modality


class Tiny(data_lib.DataSet):
  """`sizes` examples per split; each example is its index."""

  name = "tiny"
  architecture = "mnist_mlp"

  def __init__(self, train=10, validation=0, test=4):
    self.sizes = {"train": train, "validation": validation, "test": test}

  @property
  def modalities(self):
    return (Modality("x", "gaussian", (1,), "vector"),)

  def num_examples(self, split):
    return self.sizes.get(split, 0)

  def train_dataset(self, batch_size, seed, start_epoch=0):
    self.check_batch_size(batch_size)
    values = np.arange(self.sizes["train"], dtype=np.float32)[:, None]
    return tf.data.Dataset.from_tensor_slices({"x": values}).repeat().batch(batch_size)

  def eval_dataset(self, split, batch_size, seed=0, num_examples=None):
    n = self.check_split(split, num_examples)
    values = np.arange(n, dtype=np.float32)[:, None]
    return tf.data.Dataset.from_tensor_slices({"x": values}).batch(batch_size)

  def display_images(self, split, num_examples):
    return np.zeros((self.check_split(split, num_examples), 2, 2), np.uint8)

  def metadata(self, split, num_examples):
    return {"index": np.arange(self.check_split(split, num_examples))}


# --- --data_options ----------------------------------------------------------------------------


def test_parse_options_reads_key_value_items_stripped():
  assert data_lib.parse_options(["crop=center", " split = official ", "empty="]) == {
    "crop": "center",
    "split": "official",
    "empty": "",
  }
  assert data_lib.parse_options(None) == {} and data_lib.parse_options([]) == {}
  assert data_lib.parse_options(["a=b=c"]) == {"a": "b=c"}  # the first = splits


@pytest.mark.parametrize("item", ["crop", "=center", " =x"])
def test_parse_options_refuses_an_item_that_is_not_key_value(item):
  with pytest.raises(DataError) as refused:
    data_lib.parse_options(["split=paper", item])
  assert str(refused.value) == f"--data_options: {item!r} is not key=value"


def test_check_options_refuses_unknown_keys_and_values():
  allowed = {"crop": ("paper", "center"), "note": ()}
  data_lib.check_options("faces", {"crop": "center", "note": "anything"}, allowed)
  with pytest.raises(DataError) as refused:
    data_lib.check_options("faces", {"colour": "yes"}, allowed)
  assert str(refused.value) == "--data_options: faces has no option 'colour' (it has: crop, note)"
  with pytest.raises(DataError) as refused:
    data_lib.check_options("faces", {"crop": "tight"}, allowed)
  assert (
    str(refused.value) == "--data_options: crop='tight' for faces; choose from ['paper', 'center']"
  )
  with pytest.raises(DataError, match=r"mnist has no option 'crop' \(it has: none\)"):
    data_lib.check_options("mnist", {"crop": "center"}, {})


# --- what every data set shares ----------------------------------------------------------------


def test_steps_per_epoch_counts_full_batches():
  data = Tiny(train=10)
  assert [data.steps_per_epoch(b) for b in (1, 3, 5, 10, 11)] == [10, 3, 2, 1, 0]


def test_the_held_out_split_is_validation_when_there_is_one():
  assert Tiny(validation=0).held_out_split() == "test"
  assert Tiny(validation=2).held_out_split() == "validation"


def test_check_split_gives_the_examples_to_read_or_says_what_is_wrong():
  data = Tiny(train=10, validation=0, test=4)
  assert data.check_split("test") == 4 and data.check_split("train", 3) == 3
  with pytest.raises(DataError) as refused:
    data.check_split("dev")
  assert str(refused.value) == f"tiny: unknown split 'dev'; choose from {data_lib.SPLITS}"
  with pytest.raises(DataError, match="^tiny: no validation split$"):
    data.check_split("validation")
  for n in (0, 5):
    with pytest.raises(DataError, match=f"^tiny: asked for {n} test examples, it has 4$"):
      data.check_split("test", n)
  assert len(list(data.eval_dataset("test", 3, num_examples=4))) == 2  # last partial batch kept


def test_check_batch_size_refuses_what_no_full_batch_fits():
  data = Tiny(train=10)
  data.check_batch_size(10)
  with pytest.raises(DataError, match="^batch size must be at least 1, got 0$"):
    data.check_batch_size(0)
  with pytest.raises(DataError) as refused:
    data.train_dataset(11, seed=0)
  assert str(refused.value) == "batch size 11 is larger than the 10 training examples of tiny"


def test_a_data_set_without_classes_or_provenance_says_so():
  data = Tiny()
  assert data.classes("test", 2) is None and data.provenance == ""
  assert list(data.metadata("test", 3)["index"]) == [0, 1, 2]
