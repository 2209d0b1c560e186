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
  assert data_lib.parse_options(["crop=center", " split = official "]) == {
    "crop": "center",
    "split": "official",
  }
  assert data_lib.parse_options(None) == {} and data_lib.parse_options([]) == {}
  assert data_lib.parse_options(["a=b=c"]) == {"a": "b=c"}  # the first = splits


@pytest.mark.parametrize("item", ["crop", "=center", " =x"])
def test_parse_options_refuses_an_item_that_is_not_key_value(item):
  with pytest.raises(DataError) as refused:
    data_lib.parse_options(["split=paper", item])
  assert str(refused.value) == f"--data_options: {item!r} is not key=value"


@pytest.mark.parametrize("item", ["fashion_dir=", "fashion_dir= "])
def test_parse_options_refuses_an_empty_value_naming_the_option(item):
  """Issue 30: `--data_options=fashion_dir=` said "error: .: missing IDX files"."""
  with pytest.raises(DataError) as refused:
    data_lib.parse_options(["crop=center", item])
  assert str(refused.value) == (
    "--data_options: fashion_dir is empty; give it a value or leave the option out"
  )


def test_check_options_refuses_unknown_keys_and_values():
  allowed = {"crop": ("paper", "center"), "note": ()}
  recorded = data_lib.check_options("faces", {"note": "anything", "crop": "center"}, allowed)
  assert recorded == ("crop=center", "note=anything")  # what a data set keeps as its options
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


# --- ArrayDataSet: arrays in memory -------------------------------------------------------------

PICTURE = Modality("picture", "bernoulli", (4, 4, 1), "image")
CLASS = Modality("class", "categorical", (3,))


def arrays(n, seed=0):
  rng = np.random.default_rng(seed)
  return {
    "picture": (rng.random((n, 4, 4, 1)) < 0.5).astype(np.float32),
    "class": np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)],
  }


def test_an_array_data_set_reads_its_arrays_in_order_and_shuffles_each_epoch_statelessly():
  train, test = arrays(12), arrays(5, seed=1)
  data = data_lib.ArrayDataSet((PICTURE, CLASS), train, test=test)
  assert [data.num_examples(s) for s in data_lib.SPLITS] == [12, 0, 5]
  assert data.held_out_split() == "test" and data.has_held_out()
  assert data.steps_per_epoch(5) == 2  # full batches only
  evaluated = list(data.eval_dataset("test", 2))
  assert [len(b["class"]) for b in evaluated] == [2, 2, 1]
  np.testing.assert_array_equal(np.concatenate([b["picture"] for b in evaluated]), test["picture"])
  stream = [b for b in data.train_dataset(6, seed=7).take(4)]  # epochs 0 and 1
  epoch0 = np.concatenate([b["class"] for b in stream[:2]])
  epoch1 = np.concatenate([b["class"] for b in stream[2:]])
  # Each epoch is a permutation of the training examples, a different one each epoch.
  key = lambda rows: sorted(map(tuple, rows))
  assert key(epoch0) == key(epoch1) == key(train["class"])
  order = lambda rows: [
    np.flatnonzero((train["picture"].reshape(12, -1) == r).all(1)) for r in rows
  ]
  pictures0 = np.concatenate([b["picture"] for b in stream[:2]]).reshape(12, -1)
  pictures1 = np.concatenate([b["picture"] for b in stream[2:]]).reshape(12, -1)
  assert order(pictures0) != order(pictures1)
  # A pure function of (seed, epoch, step): starting at epoch 1 reads what epoch 1 was.
  resumed = [b for b in data.train_dataset(6, seed=7, start_epoch=1).take(2)]
  np.testing.assert_array_equal(np.concatenate([b["class"] for b in resumed]), epoch1)
  again = [b for b in data.train_dataset(6, seed=8).take(2)]
  assert not np.array_equal(
    np.concatenate([b["picture"] for b in again]), pictures0.reshape(-1, 4, 4, 1)
  )


def test_an_array_data_sets_classes_metadata_pictures_and_fingerprint():
  train = arrays(6)
  data = data_lib.ArrayDataSet((PICTURE, CLASS), train, test=train)
  np.testing.assert_array_equal(data.classes("test", 4), train["class"][:4].argmax(-1))
  np.testing.assert_array_equal(data.metadata("test", 4)["class"], train["class"][:4].argmax(-1))
  np.testing.assert_array_equal(data.labels("test", 3), train["class"][:3].argmax(-1))
  pictures = data.display_images("test", 2)
  assert pictures.shape == (2, 4, 4) and pictures.dtype == np.uint8
  np.testing.assert_array_equal(pictures, train["picture"][:2, ..., 0] * 255)
  other = data_lib.ArrayDataSet((PICTURE, CLASS), arrays(6, seed=3))
  assert data.fingerprint() == data_lib.ArrayDataSet((PICTURE, CLASS), arrays(6)).fingerprint()
  assert data.fingerprint() != other.fingerprint()
  assert not other.has_held_out()
  vectors = data_lib.ArrayDataSet(
    (CLASS,), {"class": train["class"]}, test={"class": train["class"]}
  )
  with pytest.raises(DataError, match="no image modality with 1 or 3 channels to draw"):
    vectors.display_images("test", 2)


@pytest.mark.parametrize(
  "train, message",
  [
    (
      {"picture": np.zeros((4, 4, 4, 1))},
      r"arrays: train must be a dict of arrays keyed \['picture', 'class'\], got \['picture'\]",
    ),
    (
      dict(arrays(4), picture=np.zeros((4, 16))),
      r"arrays: train\['picture'\] has shape \(4, 16\); modality 'picture' needs \[N\] \+ \[4, 4, 1\]",
    ),
    (
      dict(arrays(4), picture=np.full((4, 4, 4, 1), 2.0)),
      r"arrays: train\['picture'\]: a bernoulli modality's values lie in \[0, 1\], got min 2 and max 2",
    ),
    (
      dict(arrays(4), picture=np.full((4, 4, 4, 1), np.nan)),
      r"arrays: train\['picture'\] holds NaN or infinite values",
    ),
    (
      dict(arrays(4), picture=np.zeros((3, 4, 4, 1))),
      r"arrays: train needs as many examples of each modality, got \{'picture': 3, 'class': 4\}",
    ),
  ],
)
def test_bad_arrays_are_refused_naming_the_array(train, message):
  with pytest.raises(DataError, match=f"^{message}$"):
    data_lib.ArrayDataSet((PICTURE, CLASS), train)


# --- PipelineDataSet: a tf.data pipeline of one's own ------------------------------------------


def test_a_pipeline_is_an_epoch_a_pass_and_a_resume_skips_the_epochs_done():
  batches = tf.data.Dataset.from_tensor_slices(arrays(12)).batch(4)
  held = tf.data.Dataset.from_tensor_slices(arrays(4, seed=1)).batch(2)
  data = data_lib.PipelineDataSet((PICTURE, CLASS), batches, validation=held)
  assert data.steps_per_epoch(100) == 3 and data.has_held_out()
  first = [b["class"].numpy() for b in data.train_dataset(4, 0).take(6)]
  resumed = [b["class"].numpy() for b in data.train_dataset(4, 0, start_epoch=1).take(3)]
  for a, b in zip(first[3:], resumed):
    np.testing.assert_array_equal(a, b)
  assert len(list(data.eval_dataset("validation", 99))) == 2
  with pytest.raises(DataError, match="no test pipeline"):
    data.eval_dataset("test", 2)


def test_a_pipeline_must_say_how_long_an_epoch_is_and_yield_the_modalities():
  endless = tf.data.Dataset.from_tensor_slices(arrays(4)).batch(2).repeat()
  with pytest.raises(DataError, match="no known length .* say how many batches make an epoch"):
    data_lib.PipelineDataSet((PICTURE, CLASS), endless)
  assert (
    data_lib.PipelineDataSet((PICTURE, CLASS), endless, steps_per_epoch=5).steps_per_epoch(1) == 5
  )
  wrong = tf.data.Dataset.from_tensor_slices({"picture": np.zeros((4, 16), np.float32)}).batch(2)
  with pytest.raises(DataError, match=r"train must yield dicts keyed \['picture', 'class'\]"):
    data_lib.PipelineDataSet((PICTURE, CLASS), wrong)
  shaped = tf.data.Dataset.from_tensor_slices(
    {"picture": np.zeros((4, 16), np.float32), "class": np.zeros((4, 3), np.float32)}
  ).batch(2)
  with pytest.raises(DataError, match=r"train batches of 'picture' have shape \(None, 16\)"):
    data_lib.PipelineDataSet((PICTURE, CLASS), shaped)
