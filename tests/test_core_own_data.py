"""OwnDataSet from arrays: each kind's modality and the values its batches hold, reproducible
training batches and held-out bits, labels and metadata, the fingerprint, absences (refused or
dropped) and the one-line errors for bad values, and a short training run on it."""

import re

import numpy as np
import pytest
import tensorflow as tf

import jmvae_tf
from jmvae_tf.core.data import DataError
from jmvae_tf.core.own_data import OwnDataSet
from pipelines import mnist

N = 24


def arrays(n=N, seed=0):
  """One array of each kind: 6x6 grey images, classes among 1, 2 and 10, three {0, 1}
  attributes and a real vector of 4."""
  rng = np.random.default_rng(seed)
  classes = np.array([1, 2, 10])[np.arange(n) % 3]
  return {
    "image": rng.integers(0, 256, (n, 6, 6), dtype=np.uint8),
    "label": rng.permutation(classes),
    "tags": rng.integers(0, 2, (n, 3)),
    "vec": rng.normal(2.0, 3.0, (n, 4)).astype(np.float32),
  }


KINDS = {"image": "image", "label": "class", "tags": "attributes", "vec": "vector"}


def every_kind(**options):
  return OwnDataSet(KINDS, train=arrays(), test=arrays(10, seed=1), **options)


def take(dataset, count):
  return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(count)]


def joined(batches, key):
  return np.concatenate([b[key] for b in batches])


# --- each kind: its modality and what the batches hold -----------------------------------


def test_modalities_of_every_kind():
  """Name, likelihood (each kind's default), shape and family of each kind, in order."""
  data = every_kind()
  got = [(m.name, m.likelihood.kind, m.shape, m.family) for m in data.modalities]
  assert got == [
    ("image", "bernoulli", (6, 6, 1), "image"),
    ("label", "categorical", (3,), "vector"),
    ("tags", "gaussian_fixed", (3,), "vector"),
    ("vec", "gaussian", (4,), "vector"),
  ]
  assert data.num_examples("train") == N and data.num_examples("test") == 10
  assert data.num_examples("validation") == 0 and data.held_out_split() == "test"
  batch = take(data.train_dataset(8, seed=0), 1)[0]
  assert {k: v.shape for k, v in batch.items()} == {
    "image": (8, 6, 6, 1),
    "label": (8, 3),
    "tags": (8, 3),
    "vec": (8, 4),
  }
  assert all(v.dtype == np.float32 for v in batch.values())


def test_colour_images_and_vectors_of_several_axes_keep_their_shape():
  """[N, H, W, 3] images stay [H, W, 3]; a vector [N, 2, 3] is (2, 3), one [N] is (1,)."""
  rng = np.random.default_rng(0)
  data = OwnDataSet(
    {"rgb": "image", "grid": "vector", "one": "vector"},
    train={
      "rgb": rng.integers(0, 256, (8, 4, 5, 3), dtype=np.uint8),
      "grid": rng.normal(size=(8, 2, 3)),
      "one": np.arange(8.0),
    },
  )
  assert [m.shape for m in data.modalities] == [(4, 5, 3), (2, 3), (1,)]
  batch = take(data.eval_dataset("train", 8), 1)[0]
  assert batch["grid"].shape == (8, 2, 3)
  np.testing.assert_array_equal(batch["one"], np.arange(8.0, dtype=np.float32)[:, None])
  assert data.display_images("train", 2).shape == (2, 4, 5, 3)


def test_bernoulli_images_are_bits_with_the_intensity_as_probability():
  """Black pixels are always 0, white always 1, mid-grey (128) 1 about half the time; in
  training and held-out batches alike."""
  images = np.zeros((64, 8, 8), np.uint8)
  images[:, :, 4:] = 255
  images[:, 4:, :4] = 128
  data = OwnDataSet({"image": "image"}, train={"image": images}, test={"image": images})
  for batches in (take(data.train_dataset(16, seed=3), 4), take(data.eval_dataset("test", 16), 4)):
    bits = joined(batches, "image")[..., 0]
    assert set(np.unique(bits)) == {0.0, 1.0}
    assert (bits[:, :4, :4] == 0).all() and (bits[:, :, 4:] == 1).all()
    assert 0.4 < bits[:, 4:, :4].mean() < 0.6


def test_training_bits_are_those_of_the_mnist_pipeline():
  """An image and a class (ten given classes) read as pipelines.mnist reads MNIST: the same
  examples and the same bits in every training batch."""
  rng = np.random.default_rng(0)
  images, labels = rng.integers(0, 256, (30, 5, 5), dtype=np.uint8), rng.integers(0, 10, 30)
  data = OwnDataSet(
    {"image": "image", "label": {"kind": "class", "classes": list(range(10))}},
    train={"image": images, "label": labels},
  )
  ours = take(data.train_dataset(10, seed=3), 6)
  theirs = take(mnist.train_dataset(images, labels, 10, seed=3), 6)
  for key in ("image", "label"):
    np.testing.assert_array_equal(joined(ours, key), joined(theirs, key))


@pytest.mark.parametrize("likelihood", ["gaussian_fixed", "gaussian"])
def test_gaussian_images_are_the_pixels_scaled_to_minus_one_one(likelihood):
  images = arrays()["image"]
  data = OwnDataSet({"image": {"kind": "image", "likelihood": likelihood}}, train={"image": images})
  batches = take(data.eval_dataset("train", 10), 3)
  np.testing.assert_array_equal(
    joined(batches, "image")[..., 0], images.astype(np.float32) / 127.5 - 1.0
  )
  assert joined(batches, "image").min() >= -1.0 and joined(batches, "image").max() <= 1.0
  # The pictures are the pixels themselves, whatever the likelihood.
  np.testing.assert_array_equal(data.display_images("train", 5), images[:5])


def test_images_of_another_size_are_fitted_to_the_declared_one():
  """size with fit=resize or fit=crop gives the declared size; without a fit it is an error."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (4, 6, 10), dtype=np.uint8)
  for fit in ("resize", "crop"):
    data = OwnDataSet(
      {"image": {"kind": "image", "size": [3, 3], "fit": fit}}, train={"image": images}
    )
    assert data.modalities[0].shape == (3, 3, 1)
    assert data.display_images("train", 4).shape == (4, 3, 3)
  # A constant image stays that constant through a fit.
  flat = np.full((2, 6, 10), 77, np.uint8)
  data = OwnDataSet(
    {"image": {"kind": "image", "size": [3, 3], "fit": "crop"}}, train={"image": flat}
  )
  assert (data.display_images("train", 2) == 77).all()
  with pytest.raises(DataError, match=r"train\['image'\] row 0: images are 6x10, the declared"):
    OwnDataSet({"image": {"kind": "image", "size": [3, 3]}}, train={"image": images})


def test_classes_are_one_hot_over_the_sorted_classes():
  """Numbers sort as numbers (1, 2, 10, not "1", "10", "2"), text as text; 3, 3.0 and "3"
  are one class."""
  data = every_kind()
  assert data.classes_of["label"] == ("1", "2", "10")
  train = arrays()
  batch = take(data.eval_dataset("train", N), 1)[0]
  expected = np.eye(3, dtype=np.float32)[[("1", "2", "10").index(str(c)) for c in train["label"]]]
  np.testing.assert_array_equal(batch["label"], expected)

  words = OwnDataSet({"c": "class"}, train={"c": np.array(["pear", "apple", "fig", "apple"])})
  assert words.classes_of["c"] == ("apple", "fig", "pear")
  np.testing.assert_array_equal(words.classes("train", 4), [2, 0, 1, 0])

  mixed = OwnDataSet({"c": "class"}, train={"c": np.array([3, 3.0, "3", 4], object)})
  assert mixed.classes_of["c"] == ("3", "4")
  np.testing.assert_array_equal(mixed.classes("train", 4), [0, 0, 0, 1])


def test_a_given_class_list_keeps_its_order_and_may_hold_unseen_classes():
  data = OwnDataSet(
    {"c": {"kind": "class", "classes": ["zebra", "ant", "moth"]}},
    train={"c": np.array(["ant", "zebra", "ant"])},
  )
  assert data.classes_of["c"] == ("zebra", "ant", "moth") and data.modalities[0].shape == (3,)
  batch = take(data.eval_dataset("train", 3), 1)[0]
  np.testing.assert_array_equal(batch["c"], np.eye(3, dtype=np.float32)[[1, 0, 1]])


ATTRIBUTE_VALUES = {
  "zero_one": np.array([[0, 1, 1], [1, 0, 0]]),
  "minus_one_one": np.array([[-1, 1, 1], [1, -1, -1]]),
  "booleans": np.array([[False, True, True], [True, False, False]]),
}


@pytest.mark.parametrize("encoding", sorted(ATTRIBUTE_VALUES))
@pytest.mark.parametrize(
  "likelihood, low", [("gaussian_fixed", -1.0), ("bernoulli", 0.0), (None, -1.0)]
)
def test_attributes_read_in_any_encoding(encoding, likelihood, low):
  """{0, 1}, {-1, 1} and booleans are the same attributes: {-1, 1} for gaussian_fixed (the
  default), {0, 1} for bernoulli; labels are {-1, 1} either way."""
  kind = {"kind": "attributes"} | ({"likelihood": likelihood} if likelihood else {})
  data = OwnDataSet({"a": kind}, train={"a": ATTRIBUTE_VALUES[encoding]})
  ones = np.array([[0, 1, 1], [1, 0, 0]], bool)
  batch = take(data.eval_dataset("train", 2), 1)[0]
  np.testing.assert_array_equal(batch["a"], np.where(ones, 1.0, low).astype(np.float32))
  np.testing.assert_array_equal(data.labels("train", 2), np.where(ones, 1, -1))


def test_vectors_are_as_given_or_standardized_with_the_training_statistics():
  train, test = arrays()["vec"], arrays(10, seed=1)["vec"]
  plain = OwnDataSet({"vec": "vector"}, train={"vec": train}, test={"vec": test})
  np.testing.assert_array_equal(take(plain.eval_dataset("test", 10), 1)[0]["vec"], test)

  kind = {"vec": {"kind": "vector", "standardize": True}}
  data = OwnDataSet(kind, train={"vec": train}, test={"vec": test})
  seen = joined(take(data.eval_dataset("train", 8), 3), "vec")
  np.testing.assert_allclose(seen.mean(axis=0), 0.0, atol=1e-5)
  np.testing.assert_allclose(seen.std(axis=0), 1.0, atol=1e-5)
  # The test split is scaled with the training split's mean and deviation, not its own.
  mean, std = train.mean(axis=0), train.std(axis=0)
  np.testing.assert_allclose(
    take(data.eval_dataset("test", 10), 1)[0]["vec"], (test - mean) / std, rtol=1e-5, atol=1e-6
  )
  # A constant column is centred, not divided by zero.
  constant = np.concatenate([train[:, :1], np.full((N, 1), 5.0, np.float32)], axis=1)
  data = OwnDataSet(kind, train={"vec": constant})
  assert (take(data.eval_dataset("train", N), 1)[0]["vec"][:, 1] == 0).all()


def test_a_bernoulli_vector_in_zero_one_is_taken_as_given():
  values = np.array([[0.0, 0.25], [1.0, 0.5]])
  data = OwnDataSet({"v": {"kind": "vector", "likelihood": "bernoulli"}}, train={"v": values})
  np.testing.assert_array_equal(take(data.eval_dataset("train", 2), 1)[0]["v"], values)


# --- reproducible batches ------------------------------------------------------------------


def test_training_batches_are_a_function_of_seed_epoch_and_step():
  """Two reads give the same batches; start_epoch=1 gives the second epoch of a read from 0;
  each epoch is a permutation of the examples (rows tagged by their vector), a fresh one per
  epoch with fresh bits; another seed reads otherwise."""
  base = arrays()
  base["vec"] = np.repeat(np.arange(N, dtype=np.float32)[:, None], 4, axis=1)
  data = OwnDataSet(KINDS, train=base)
  steps = data.steps_per_epoch(6)
  assert steps == 4
  first, again = (take(data.train_dataset(6, seed=5), 2 * steps) for _ in range(2))
  resumed = take(data.train_dataset(6, seed=5, start_epoch=1), steps)
  other = take(data.train_dataset(6, seed=6), steps)
  for key in KINDS:
    np.testing.assert_array_equal(joined(first, key), joined(again, key))
    np.testing.assert_array_equal(joined(first[steps:], key), joined(resumed, key))
  orders = [joined(first[e * steps : (e + 1) * steps], "vec")[:, 0].astype(int) for e in (0, 1)]
  assert all(sorted(o) == list(range(N)) for o in orders)
  assert not np.array_equal(orders[0], orders[1])
  assert not np.array_equal(orders[0], joined(other, "vec")[:, 0].astype(int))
  # Each example's other modalities travel with it.
  np.testing.assert_array_equal(
    joined(first[:steps], "tags"), np.where(base["tags"][orders[0]] > 0, 1.0, -1.0)
  )
  # The same example has fresh bits in the next epoch.
  epoch_bits = [
    joined(first[e * steps : (e + 1) * steps], "image")[np.argsort(orders[e])] for e in (0, 1)
  ]
  assert not np.array_equal(*epoch_bits)


def test_held_out_bits_are_the_same_for_any_batch_size_and_read():
  data = every_kind()
  whole = take(data.eval_dataset("test", 10, seed=2), 1)[0]["image"]
  for batch_size in (1, 3, 4, 7):
    batches = take(data.eval_dataset("test", batch_size, seed=2), 100)
    assert [len(b["image"]) for b in batches][-1] == 10 - (len(batches) - 1) * batch_size
    np.testing.assert_array_equal(joined(batches, "image"), whole)
  first = take(data.eval_dataset("test", 4, seed=2, num_examples=6), 10)
  np.testing.assert_array_equal(joined(first, "image"), whole[:6])
  other = take(data.eval_dataset("test", 10, seed=3), 1)[0]["image"]
  assert not np.array_equal(whole, other)


# --- what the rest of the library reads ----------------------------------------------------


def test_labels_classes_and_metadata():
  """The first class modality is the label; without one, the first attributes ({-1, 1});
  metadata names classes by their text and attributes by column."""
  data = every_kind()
  test = arrays(10, seed=1)
  index = {"1": 0, "2": 1, "10": 2}
  expected = np.array([index[str(c)] for c in test["label"]])
  assert data.label_modality() == "label" and data.label_modalities() == ("label",)
  np.testing.assert_array_equal(data.classes("test", 10), expected)
  np.testing.assert_array_equal(data.labels("test", 5), expected[:5])
  meta = data.metadata("test", 4)
  assert sorted(meta) == ["label", "tags_0", "tags_1", "tags_2"]
  assert meta["label"].tolist() == [str(c) for c in test["label"][:4]]
  np.testing.assert_array_equal(meta["tags_1"], test["tags"][:4, 1])

  attributes = OwnDataSet(
    {"tags": "attributes", "vec": "vector"}, train={"tags": test["tags"], "vec": test["vec"]}
  )
  assert attributes.label_modality() == "tags" and attributes.classes("train", 3) is None
  np.testing.assert_array_equal(attributes.labels("train", 3), np.where(test["tags"][:3], 1, -1))

  neither = OwnDataSet({"vec": "vector"}, train={"vec": test["vec"]})
  assert neither.label_modalities() == () and neither.labels("train", 3) is None
  np.testing.assert_array_equal(neither.metadata("train", 3)["index"], [0, 1, 2])
  with pytest.raises(DataError, match="no image modality"):
    neither.display_images("train", 3)
  with pytest.raises(DataError, match="asked for 11 test examples, it has 10"):
    data.metadata("test", 11)


def test_display_images_are_the_first_pixels_of_the_split():
  data = every_kind()
  np.testing.assert_array_equal(data.display_images("test", 3), arrays(10, seed=1)["image"][:3])


def test_the_fingerprint_is_the_training_values():
  """The same values give the same fingerprint; a changed pixel, class, attribute or vector
  value of the training split, or another class list, another; held-out values do not count."""
  base = every_kind().fingerprint()
  assert every_kind().fingerprint() == base

  def changed(key, edit):
    train = arrays()
    edit(train[key])
    return OwnDataSet(KINDS, train=train, test=arrays(10, seed=1)).fingerprint()

  assert changed("image", lambda a: a.__setitem__((3, 2, 2), a[3, 2, 2] ^ 1)) != base
  assert changed("label", lambda a: a.__setitem__(0, 1 if a[0] != 1 else 2)) != base
  assert changed("tags", lambda a: a.__setitem__((5, 1), 1 - a[5, 1])) != base
  assert changed("vec", lambda a: a.__setitem__((7, 3), a[7, 3] + 1e-3)) != base
  given = dict(KINDS, label={"kind": "class", "classes": [1, 2, 10, 11]})
  assert OwnDataSet(given, train=arrays()).fingerprint() != base
  other_test = OwnDataSet(KINDS, train=arrays(), test=arrays(10, seed=2))
  assert other_test.fingerprint() == base


def test_num_train_keeps_the_first_examples():
  data = OwnDataSet(KINDS, train=arrays(), num_train=10)
  assert data.num_examples("train") == 10
  np.testing.assert_array_equal(data.display_images("train", 10), arrays()["image"][:10])
  with pytest.raises(DataError, match="num_train=25, the train split has 24"):
    OwnDataSet(KINDS, train=arrays(), num_train=25)


# --- absences: counted, refused or dropped -------------------------------------------------


def with_absences():
  """6 of 24 training rows lack something: vec masked in rows 1 and 2 (one entry of row 2),
  label None in row 4 and "" in row 5, image masked in row 7, tags masked in rows 2 and 9;
  the test split lacks label in row 0."""
  train, test = arrays(), arrays(10, seed=1)
  vec = np.ma.MaskedArray(train["vec"])
  vec[1] = np.ma.masked
  vec[2, 3] = np.ma.masked
  label = train["label"].astype(object)
  label[4], label[5] = None, ""
  image = np.ma.MaskedArray(train["image"], mask=np.zeros_like(train["image"], bool))
  image.mask[7] = True
  tags = np.ma.MaskedArray(train["tags"], mask=np.zeros_like(train["tags"], bool))
  tags.mask[[2, 9], 0] = True
  test_label = test["label"].astype(object)
  test_label[0] = "  "
  train = dict(train, vec=vec, label=label, image=image, tags=tags)
  return train, dict(test, label=test_label)


def test_absences_are_counted_and_refused_in_one_line():
  train, test = with_absences()
  with pytest.raises(DataError) as error:
    OwnDataSet(KINDS, train=train, test=test)
  message = str(error.value)
  assert "\n" not in message
  for words in (
    "train: 1 lack 'image', 2 lack 'label', 2 lack 'tags', 2 lack 'vec' (of 24)",
    "test: 1 lack 'label' (of 10)",
    "missing=drop",
  ):
    assert words in message, message


def test_missing_drop_leaves_out_the_incomplete_examples(capsys):
  train, test = with_absences()
  data = OwnDataSet(KINDS, train=train, test=test, missing="drop")
  assert data.counts == {
    "train": {"image": 1, "label": 2, "tags": 2, "vec": 2},
    "test": {"image": 0, "label": 1, "tags": 0, "vec": 0},
  }
  assert "missing=drop" in data.options[0]
  kept = [r for r in range(N) if r not in (1, 2, 4, 5, 7, 9)]
  assert data.num_examples("train") == 18 and data.num_examples("test") == 9
  np.testing.assert_array_equal(data.display_images("train", 18), arrays()["image"][kept])
  np.testing.assert_array_equal(
    take(data.eval_dataset("train", 18), 1)[0]["vec"], arrays()["vec"][kept]
  )
  np.testing.assert_array_equal(data.display_images("test", 9), arrays(10, seed=1)["image"][1:])
  err = capsys.readouterr().err
  assert "train 6 of 24" in err and "test 1 of 10" in err, err
  with pytest.raises(DataError, match="every train example lacks a modality"):
    OwnDataSet({"v": "vector"}, train={"v": np.ma.masked_all((3, 2))}, missing="drop")


# --- bad input: one DataError naming where -------------------------------------------------


def _with(key, value, split="train"):
  """every_kind's arrays with train (or test) [key] replaced."""
  train, test = arrays(), arrays(10, seed=1)
  (train if split == "train" else test)[key] = value
  return {"kinds": KINDS, "train": train, "test": test}


def _nan_at(row, column, value=np.nan):
  v = arrays()["vec"].copy()
  v[row, column] = value
  return v


BAD_INPUTS = {
  "nan": (lambda: _with("vec", _nan_at(5, 2)), [r"train\['vec'\] row 5 column 2", "NaN"]),
  "inf": (lambda: _with("vec", _nan_at(3, 1, -np.inf)), [r"train\['vec'\] row 3 column 1"]),
  "nan_in_the_test_split": (
    lambda: _with("vec", np.where(np.arange(10)[:, None] == 8, np.nan, 0.0), "test"),
    [r"test\['vec'\] row 8", "NaN or an infinite value"],
  ),
  "text_in_a_numeric_array": (
    lambda: _with("vec", np.array([["1", "2", "3", "4"]] * 23 + [["1", "2", "x", "4"]])),
    [r"train\['vec'\] row 23 column 2: 'x' is not a number"],
  ),
  "text_in_attributes": (
    lambda: _with("tags", np.array([[0, 1, "yes"]] * N, object)),
    [r"train\['tags'\] row 0 column 2: 'yes' is not a number"],
  ),
  "a_class_not_in_the_given_list": (
    lambda: {
      "kinds": dict(KINDS, label={"kind": "class", "classes": [1, 2]}),
      "train": arrays(),
    },
    [r"train\['label'\] row \d+: class '10' is not in the class list \['1', '2'\]"],
  ),
  "a_test_class_unseen_in_training": (
    lambda: _with("label", np.array([1, 2, 10, 2, 1, 7, 1, 2, 1, 2]), "test"),
    [r"test\['label'\] row 5: class '7' is not in the class list"],
  ),
  "nan_class": (
    lambda: _with("label", np.where(np.arange(N) == 6, np.nan, arrays()["label"])),
    [r"train\['label'\] row 6", "is not a class"],
  ),
  "attribute_value_2": (
    lambda: _with("tags", np.where(np.arange(N)[:, None] == 4, [[0, 2, 1]], arrays()["tags"])),
    [r"train\['tags'\] row 4 column 1: 2 is not an attribute's value"],
  ),
  "float_images": (
    lambda: _with("image", arrays()["image"].astype(np.float32)),
    [r"train\['image'\] row 0: images are uint8 pixels", "got float32"],
  ),
  "int64_images": (
    lambda: _with("image", arrays()["image"].astype(np.int64)),
    [r"train\['image'\]", "got int64"],
  ),
  "images_of_two_channels": (
    lambda: _with("image", np.zeros((N, 6, 6, 2), np.uint8)),
    [r"train\['image'\]", r"\(24, 6, 6, 2\)"],
  ),
  "images_of_other_sizes_in_two_splits": (
    lambda: _with("image", np.zeros((10, 5, 5), np.uint8), "test"),
    ["image modality 'image' has images of shapes", r"\(5, 5, 1\), \(6, 6, 1\)"],
  ),
  "differing_row_counts": (
    lambda: _with("vec", arrays()["vec"][:20]),
    ["the train split needs as many examples of each modality", "'vec': 20", "'image': 24"],
  ),
  "unknown_kind": (
    lambda: {"kinds": dict(KINDS, vec="matrix"), "train": arrays()},
    ["modality 'vec': kind 'matrix' is not one of"],
  ),
  "unknown_key_in_a_declaration": (
    lambda: {"kinds": dict(KINDS, vec={"kind": "vector", "size": [2, 2]}), "train": arrays()},
    ["modality 'vec': unknown key 'size' for a vector"],
  ),
  "an_array_of_no_modality": (
    lambda: _with("extra", np.zeros(N)),
    ["train must be a dict of arrays keyed", "'extra'"],
  ),
  "a_modality_without_its_array": (
    lambda: {"kinds": KINDS, "train": arrays(), "test": {"image": arrays(10)["image"]}},
    [
      re.escape(
        "test must be a dict of arrays keyed ['image', 'label', 'tags', 'vec'], got ['image']"
      )
    ],
  ),
  "categorical_image": (
    lambda: {"kinds": dict(KINDS, image={"kind": "image", "likelihood": "categorical"})},
    ["modality 'image': likelihood 'categorical' for a image; choose from"],
  ),
  "gaussian_class": (
    lambda: {"kinds": dict(KINDS, label={"kind": "class", "likelihood": "gaussian"})},
    ["modality 'label': likelihood 'gaussian' for a class"],
  ),
  "standardize_with_gaussian_fixed": (
    lambda: {
      "kinds": dict(
        KINDS, vec={"kind": "vector", "likelihood": "gaussian_fixed", "standardize": True}
      )
    },
    ["modality 'vec': standardize", "its likelihood must be gaussian"],
  ),
  "a_bernoulli_vector_above_one": (
    lambda: {"kinds": dict(KINDS, vec={"kind": "vector", "likelihood": "bernoulli"})},
    [r"train\['vec'\] row 0: a bernoulli vector's values lie in \[0, 1\]"],
  ),
  "one_class_only": (
    lambda: _with("label", np.full(N, 4)),
    ["class modality 'label': the train split has 1 distinct class"],
  ),
  "a_name_with_a_space": (
    lambda: {"kinds": {"my image": "image"}, "train": {"my image": arrays()["image"]}},
    ["a modality's name must be a word, got 'my image'"],
  ),
  "unknown_option": (
    lambda: {"kinds": KINDS, "train": arrays(), "shuffle": "yes"},
    [r"has no option 'shuffle' \(it has: missing\)"],
  ),
  "bad_missing_value": (
    lambda: {"kinds": KINDS, "train": arrays(), "missing": "impute"},
    ["missing='impute'", re.escape("choose from ['refuse', 'drop', 'keep']")],
  ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_data_error_naming_where(case):
  make, patterns = BAD_INPUTS[case]
  kwargs = {"train": arrays(), **make()}
  with pytest.raises(DataError) as error:
    OwnDataSet(**kwargs)
  message = str(error.value)
  assert "\n" not in message
  for pattern in patterns:
    assert re.search(pattern, message), (pattern, message)


# --- a text: captions given as strings --------------------------------------------------------

CAPTIONS = ["A red cat.", "the blue dog", "a small red bird", "Big dog, small cat!", "a dog", "red"]


def with_text(train=CAPTIONS, test=("a red dog", "the zebra cat"), **declared):
  """A vector and a text modality of `train` (and `test`) captions."""
  kinds = {"vec": "vector", "caption": {"kind": "text", **declared}}
  return {
    "kinds": kinds,
    "train": {"vec": np.ones((len(train), 2)), "caption": train},
    "test": None if test is None else {"vec": np.ones((len(test), 2)), "caption": test},
  }


def test_a_text_is_tokens_over_the_training_captions_vocabulary():
  """A list of str, or a str array: a tokens modality (T = the longest training caption's
  words and its end) whose batches decode back to the captions, an unseen word as [UNK]."""
  data = OwnDataSet(**with_text(test=np.array(["a red dog", "the zebra cat"])))
  m = data.modalities[1]
  words = {"a", "red", "cat", "the", "blue", "dog", "small", "bird", "big"}
  assert (m.likelihood.kind, m.family, m.shape) == ("tokens", "sequence", (5, len(words) + 2))
  assert set(m.text.words) == words and m.to_dict()["vocabulary"] == list(m.vocabulary)
  batch = take(data.eval_dataset("test", 2), 1)[0]["caption"]
  assert m.text.decode_numpy(batch) == ["a red dog", "the [UNK] cat"]
  np.testing.assert_array_equal(batch.sum(-1), [[1, 1, 1, 1, 0]] * 2)
  train = joined(take(data.eval_dataset("train", 4), 2), "caption")
  assert m.text.decode_numpy(train) == [
    "a red cat",
    "the blue dog",
    "a small red bird",
    "big dog small cat",
    "a dog",
    "red",
  ]


def test_missing_captions_are_none_blank_or_masked():
  captions = np.ma.MaskedArray(np.array(CAPTIONS), mask=[0, 0, 1, 0, 0, 0])
  args = with_text(train=captions, test=[None, "a cat", " "])
  with pytest.raises(DataError, match=r"train: 1 lack 'caption' \(of 6\); test: 2 lack"):
    OwnDataSet(**args)
  data = OwnDataSet(**args, missing="drop")
  assert (data.num_examples("train"), data.num_examples("test")) == (5, 1)
  assert "bird" not in data.modalities[1].text.words  # only in the caption left out


def test_the_fingerprint_follows_each_training_caption():
  before = OwnDataSet(**with_text()).fingerprint()
  assert OwnDataSet(**with_text()).fingerprint() == before
  changed = CAPTIONS[:4] + ["a cat"] + CAPTIONS[5:]
  assert OwnDataSet(**with_text(train=changed)).fingerprint() != before
  # One word for another with the same ids: the vocabulary tells them apart.
  renamed = [c.replace("bird", "fish") for c in CAPTIONS]
  assert OwnDataSet(**with_text(train=renamed)).fingerprint() != before


def test_captions_cut_are_said_once(capsys):
  capsys.readouterr()
  args = with_text(train=CAPTIONS + ["one two three four five six"], max_tokens=6)
  data = OwnDataSet(**args)
  OwnDataSet(**args)
  err = capsys.readouterr().err
  assert err.count("warning:") == 1, err
  assert (
    "arrays: text 'caption': captions of more than 5 words are cut to their first 5 (train 1 of "
    "7; the longest has 6 words): max_tokens=6, as given" in err
  )
  assert (
    data.modalities[1].text.decode_numpy(joined(take(data.eval_dataset("train", 7), 1), "caption"))[
      -1
    ]
    == "one two three four five"
  )


TEXT_BAD_INPUTS = {
  "a_caption_of_punctuation": (
    lambda: with_text(train=CAPTIONS[:3] + ["..."] + CAPTIONS[4:]),
    [r"train\['caption'\] row 3: the caption '...' has no word once lower-cased"],
  ),
  "a_test_caption_of_unknown_words": (
    lambda: with_text(test=["a cat", "Zebra!"]),
    [r"test\['caption'\] row 1: the caption 'Zebra!' has only words the vocabulary does not"],
  ),
  "a_test_caption_of_words_past_the_vocabulary_size": (
    lambda: with_text(test=["a red dog", "small bird"], vocabulary_size=4),
    [r"test\['caption'\] row 1", r"vocabulary_size=4 keeps the 2 most frequent training words"],
  ),
  "a_number": (
    lambda: with_text(train=CAPTIONS[:2] + [3.5] + CAPTIONS[3:]),
    [r"train\['caption'\] row 2: a caption is text, got 3.5"],
  ),
  "two_captions_a_row": (
    lambda: with_text(train=np.array([CAPTIONS, CAPTIONS]).T),
    [r"train\['caption'\] row 0: a text is one caption per example, got shape \(6, 2\)"],
  ),
  "max_tokens_1": (
    lambda: with_text(max_tokens=1),
    [r"modality 'caption': max_tokens must be a whole number in \[2, 512\], got 1"],
  ),
  "max_tokens_513": (lambda: with_text(max_tokens=513), ["max_tokens", "got 513"]),
  "max_tokens_2_5": (lambda: with_text(max_tokens=2.5), ["max_tokens", "got 2.5"]),
  "vocabulary_size_2": (
    lambda: with_text(vocabulary_size=2),
    [r"vocabulary_size must be a whole number in \[3, 1000000\], got 2"],
  ),
  "vocabulary_size_of_text": (lambda: with_text(vocabulary_size="9"), ["got '9'"]),
  "categorical_text": (
    lambda: with_text(likelihood="categorical"),
    [r"likelihood 'categorical' for a text; choose from \['tokens'\]"],
  ),
  "max_tokens_for_a_vector": (
    lambda: {"kinds": {"vec": {"kind": "vector", "max_tokens": 4}}, "train": {"vec": np.ones(3)}},
    ["modality 'vec': unknown key 'max_tokens' for a vector"],
  ),
}


@pytest.mark.parametrize("case", sorted(TEXT_BAD_INPUTS))
def test_a_texts_bad_input_is_one_data_error_naming_where(case):
  make, patterns = TEXT_BAD_INPUTS[case]
  with pytest.raises(DataError) as error:
    OwnDataSet(**make())
  message = str(error.value)
  assert "\n" not in message
  for pattern in patterns:
    assert re.search(pattern, message), (pattern, message)


# --- splits that disagree, empty or absent; a class written two ways ------------------------


@pytest.mark.parametrize("key, width", [("vec", 5), ("tags", 2)])
def test_a_held_out_split_of_another_width_is_refused(key, width):
  test = arrays(10, seed=1)
  test[key] = np.ones((10, width))
  with pytest.raises(DataError, match=rf"test.*{key}"):
    OwnDataSet(KINDS, train=arrays(), test=test)


def test_an_empty_split_is_a_data_error():
  with pytest.raises(DataError, match="validation"):
    OwnDataSet({"v": "vector"}, train={"v": np.zeros((4, 2))}, validation={"v": np.zeros((0, 2))})


def test_a_missing_train_split_is_a_data_error():
  with pytest.raises(DataError, match="train"):
    OwnDataSet({"v": "vector"}, train=None, test={"v": np.zeros((4, 2))})


def test_a_bad_value_in_the_first_column_is_named_by_its_column():
  with pytest.raises(DataError, match=r"train\['vec'\] row 3 column 0"):
    OwnDataSet(KINDS, **{k: v for k, v in _with("vec", _nan_at(3, 0)).items() if k != "kinds"})


def test_text_of_one_number_is_one_class():
  data = OwnDataSet({"c": "class"}, train={"c": np.array(["1", "1.0", "2", "2.0"])})
  assert data.classes_of["c"] == ("1", "2")


# --- end to end ----------------------------------------------------------------------------


def test_a_model_trains_on_it(tmp_path, monkeypatch):
  """make_model and train (in memory) on 64 examples of every kind: one epoch of 4 steps,
  finite losses, nothing written; it gives a distribution over the classes for each image."""
  monkeypatch.chdir(tmp_path)
  data = OwnDataSet(KINDS, train=arrays(64), test=arrays(16, seed=1))
  model = jmvae_tf.make_model("jmvae_kl", data, architecture_options={"hidden": "32"}, latent_dim=4)
  result = jmvae_tf.train(model, data, epochs=1, batch_size=16, warmup_epochs=0, verbose=0)
  assert int(model.optimizer.iterations.numpy()) == 4
  assert np.isfinite(result.history["loss"]).all() and "nll_tags" in result.history
  batch = next(iter(data.eval_dataset("test", 8)))
  read = model.generated_mean(batch, "label", given=["image"])
  assert read.shape == (8, 3) and np.allclose(tf.reduce_sum(read, -1).numpy(), 1.0, atol=1e-4)
  assert list(tmp_path.iterdir()) == []


def test_true_and_false_are_one_class_however_written():
  """Booleans and their text (a CSV's "True", JSON's true) name the same two classes."""
  data = OwnDataSet(
    {"c": "class"},
    train={"c": np.array(["True", "False", "true"])},
    test={"c": np.array([True, False])},
  )
  assert data.classes_of["c"] == ("false", "true")
  np.testing.assert_array_equal(data.classes("test", 2), [1, 0])
