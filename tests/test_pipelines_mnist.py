"""Tests for pipelines.mnist: loading, the split, binarisation, tf.data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from idx_writer import write_idx

from pipelines.mnist import (
  IDX_FILES,
  DataError,
  ImageLabelArrays,
  binarize,
  eval_dataset,
  load_arrays,
  load_idx_dir,
  load_tfds,
  split,
  steps_per_epoch,
  train_dataset,
)

# ------------------------------------------------------------------ helpers

TAG_PIXELS = 8  # The first 8 pixels of a tagged image spell its index in binary.


def tagged_images(num_examples: int, gray: int = 128) -> tuple[np.ndarray, np.ndarray]:
  """Images whose first pixels encode their index with intensities 0 or 255.

  Such pixels binarise deterministically (u < 0 never, u < 1 always), so the
  index survives binarisation and tells which example landed where; the
  gray rest gives random bits to compare.  Labels are index % 10.
  """
  images = np.full((num_examples, 28, 28), gray, np.uint8)
  flat = images.reshape(num_examples, -1)
  bits = (np.arange(num_examples)[:, None] >> np.arange(TAG_PIXELS)) & 1
  flat[:, :TAG_PIXELS] = bits * 255
  return images, (np.arange(num_examples) % 10).astype(np.uint8)


def decode_indices(batch_images: np.ndarray) -> np.ndarray:
  flat = batch_images.reshape(batch_images.shape[0], -1)[:, :TAG_PIXELS]
  return (flat.astype(np.int64) << np.arange(TAG_PIXELS)).sum(axis=1)


def take(dataset: tf.data.Dataset, num_batches: int) -> list[dict[str, np.ndarray]]:
  return list(dataset.take(num_batches).as_numpy_iterator())


def concat(batches: list[dict[str, np.ndarray]], key: str) -> np.ndarray:
  return np.concatenate([batch[key] for batch in batches])


def write_idx_dir(directory: Path, arrays: ImageLabelArrays, unzipped: bool = False) -> Path:
  directory.mkdir(parents=True, exist_ok=True)
  for role, file_name in IDX_FILES.items():
    name = file_name.removesuffix(".gz") if unzipped else file_name
    write_idx(directory / name, getattr(arrays, role))
  return directory


def small_arrays(num_train: int = 30, num_test: int = 10) -> ImageLabelArrays:
  train_images, train_labels = tagged_images(num_train)
  test_images, test_labels = tagged_images(num_test)
  return ImageLabelArrays(train_images, train_labels, test_images, test_labels)


@pytest.fixture(scope="module")
def real_slice(mnist_arrays) -> tuple[np.ndarray, np.ndarray]:
  """The first 1,000 real training images: realistic but quick."""
  return mnist_arrays.train_images[:1000], mnist_arrays.train_labels[:1000]


# ------------------------------------------------------------------ loading


def test_load_idx_dir_real(mnist_arrays) -> None:
  assert mnist_arrays.train_images.shape == (60000, 28, 28)
  assert mnist_arrays.test_images.shape == (10000, 28, 28)
  assert mnist_arrays.train_labels.shape == (60000,)
  assert mnist_arrays.test_labels.shape == (10000,)


def test_load_idx_dir_reads_unzipped_files(tmp_path: Path) -> None:
  arrays = small_arrays()
  loaded = load_arrays(data_dir=write_idx_dir(tmp_path / "plain", arrays, unzipped=True))
  for role in IDX_FILES:
    np.testing.assert_array_equal(getattr(loaded, role), getattr(arrays, role))


def test_load_idx_dir_lists_missing_files(tmp_path: Path) -> None:
  directory = write_idx_dir(tmp_path / "partial", small_arrays())
  (directory / IDX_FILES["test_labels"]).unlink()
  (directory / IDX_FILES["train_images"]).unlink()
  with pytest.raises(DataError) as caught:
    load_idx_dir(directory)
  message = str(caught.value)
  assert str(directory) in message and "\n" not in message
  assert IDX_FILES["test_labels"] in message and IDX_FILES["train_images"] in message
  assert IDX_FILES["train_labels"] not in message


def test_load_idx_dir_missing_directory(tmp_path: Path) -> None:
  with pytest.raises(DataError, match="does not exist"):
    load_idx_dir(tmp_path / "nowhere")


def test_load_idx_dir_rejects_count_mismatch(tmp_path: Path) -> None:
  arrays = small_arrays()
  directory = write_idx_dir(tmp_path / "mismatch", arrays)
  write_idx(directory / IDX_FILES["train_labels"], arrays.train_labels[:-1])
  with pytest.raises(DataError, match=IDX_FILES["train_labels"]):
    load_idx_dir(directory)


def test_load_idx_dir_rejects_label_out_of_range(tmp_path: Path) -> None:
  arrays = small_arrays()
  directory = write_idx_dir(tmp_path / "bad-labels", arrays)
  write_idx(directory / IDX_FILES["test_labels"], np.full(10, 10, np.uint8))
  with pytest.raises(DataError, match=IDX_FILES["test_labels"]):
    load_idx_dir(directory)


def test_load_tfds_with_mock_data() -> None:
  import tensorflow_datasets as tfds

  with tfds.testing.mock_data(num_examples=12):
    arrays = load_tfds("mnist")
  for images, labels in [
    (arrays.train_images, arrays.train_labels),
    (arrays.test_images, arrays.test_labels),
  ]:
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (12,)
    assert labels.min() >= 0 and labels.max() <= 9


def test_load_tfds_unknown_name() -> None:
  with pytest.raises(DataError, match="cifar10"):
    load_tfds("cifar10")


# -------------------------------------------------------------------- split


def test_split_is_the_papers(mnist_arrays) -> None:
  splits = split(mnist_arrays, validation=True)
  assert splits.train.num_examples == 50000
  assert splits.validation.num_examples == 10000
  assert splits.test.num_examples == 10000
  np.testing.assert_array_equal(splits.train.images, mnist_arrays.train_images[:50000])
  np.testing.assert_array_equal(splits.validation.images, mnist_arrays.train_images[50000:])
  np.testing.assert_array_equal(splits.validation.labels, mnist_arrays.train_labels[50000:])
  np.testing.assert_array_equal(splits.test.labels, mnist_arrays.test_labels)
  assert split(mnist_arrays).validation is None


def test_split_needs_enough_training_images() -> None:
  with pytest.raises(DataError, match="need 50000"):
    split(small_arrays())


# ------------------------------------------------------------- binarisation


def test_binarize_gives_bits_with_the_intensity_as_probability() -> None:
  # 100 x 784 = 78,400 independent draws: the standard error of the mean is
  # sqrt(0.3 * 0.7 / 78400) ~ 0.0016, so 0.01 is a > 6-sigma tolerance.
  bits = binarize(tf.fill([100, 28, 28], 0.3), seed=tf.constant([1, 2], tf.int64)).numpy()
  assert bits.dtype == np.float32
  assert set(np.unique(bits)) <= {0.0, 1.0}
  assert abs(bits.mean() - 0.3) < 0.01


def test_binarize_is_stateless_and_respects_extremes() -> None:
  intensities = tf.constant(np.linspace(0.0, 1.0, 1001, dtype=np.float32))
  first = binarize(intensities, seed=[3, 4]).numpy()
  np.testing.assert_array_equal(first, binarize(intensities, seed=[3, 4]).numpy())
  assert not np.array_equal(first, binarize(intensities, seed=[3, 5]).numpy())
  assert first[0] == 0.0 and first[-1] == 1.0


# ------------------------------------------------------------ train_dataset


def test_steps_per_epoch() -> None:
  assert steps_per_epoch(50000, 100) == 500
  assert steps_per_epoch(65, 10) == 6
  assert steps_per_epoch(65, 10, drop_remainder=False) == 7


def test_train_dataset_element_spec(real_slice) -> None:
  spec = train_dataset(*real_slice, batch_size=100, seed=0).element_spec
  assert spec["image"].shape == (100, 28, 28, 1) and spec["image"].dtype == tf.float32
  assert spec["label"].shape == (100, 10) and spec["label"].dtype == tf.float32


def test_train_epochs_are_fresh_permutations_with_fresh_bits() -> None:
  images, labels = tagged_images(60)
  steps = steps_per_epoch(60, 10)
  batches = take(train_dataset(images, labels, batch_size=10, seed=7), 3 * steps)
  epochs = [batches[e * steps : (e + 1) * steps] for e in range(3)]

  bits_by_epoch = []
  orders = []
  for epoch in epochs:
    epoch_images = concat(epoch, "image")[..., 0]
    order = decode_indices(epoch_images)
    assert sorted(order.tolist()) == list(range(60))  # Each example once.
    np.testing.assert_array_equal(concat(epoch, "label"), np.eye(10, dtype=np.float32)[order % 10])
    assert set(np.unique(epoch_images)) <= {0.0, 1.0}
    orders.append(order)
    bits_by_epoch.append(epoch_images[np.argsort(order)].reshape(60, -1)[:, TAG_PIXELS:])

  assert not np.array_equal(orders[0], orders[1])
  assert not np.array_equal(orders[0], np.arange(60))
  # Same images, fresh bits: about half of the gray pixels should change.
  changed = np.mean(bits_by_epoch[0] != bits_by_epoch[1])
  assert 0.4 < changed < 0.6


def test_train_dataset_is_reproducible_and_resumable(real_slice) -> None:
  steps = steps_per_epoch(1000, 100)
  uninterrupted = take(train_dataset(*real_slice, batch_size=100, seed=11), 2 * steps)
  again = take(train_dataset(*real_slice, batch_size=100, seed=11), 2 * steps)
  resumed = take(train_dataset(*real_slice, batch_size=100, seed=11, start_epoch=1), steps)
  other_seed = take(train_dataset(*real_slice, batch_size=100, seed=12), steps)

  for key in ("image", "label"):
    np.testing.assert_array_equal(concat(uninterrupted, key), concat(again, key))
    np.testing.assert_array_equal(concat(uninterrupted[steps:], key), concat(resumed, key))
  assert not np.array_equal(concat(uninterrupted[:steps], "image"), concat(other_seed, "image"))


def test_train_dataset_keeps_partial_batch_when_asked() -> None:
  images, labels = tagged_images(65)
  batches = take(train_dataset(images, labels, batch_size=10, seed=3, drop_remainder=False), 7)
  assert [len(batch["image"]) for batch in batches] == [10] * 6 + [5]
  assert sorted(decode_indices(concat(batches, "image")[..., 0]).tolist()) == list(range(65))


def test_train_dataset_rejects_batch_larger_than_data() -> None:
  images, labels = tagged_images(5)
  with pytest.raises(ValueError, match="no batches"):
    train_dataset(images, labels, batch_size=10, seed=0)


# ------------------------------------------------------------- eval_dataset


def test_eval_dataset_bits_are_fixed(real_slice) -> None:
  images, labels = real_slice
  first = take(eval_dataset(images, labels, batch_size=100, seed=5), -1)
  second = take(eval_dataset(images, labels, batch_size=100, seed=5), -1)
  by_seven = take(eval_dataset(images, labels, batch_size=7, seed=5), -1)
  other_seed = take(eval_dataset(images, labels, batch_size=100, seed=6), -1)

  assert len(by_seven) == 143 and len(by_seven[-1]["image"]) == 1000 - 142 * 7
  eval_images = concat(first, "image")
  assert eval_images.shape == (1000, 28, 28, 1)
  assert set(np.unique(eval_images)) <= {0.0, 1.0}
  assert not eval_images[images == 0].any()  # In order: black stays black.
  np.testing.assert_array_equal(eval_images, concat(second, "image"))
  np.testing.assert_array_equal(eval_images, concat(by_seven, "image"))
  assert not np.array_equal(eval_images, concat(other_seed, "image"))
  np.testing.assert_array_equal(concat(by_seven, "label"), np.eye(10, dtype=np.float32)[labels])


def test_the_fingerprint_is_the_training_examples_content(tmp_path: Path) -> None:
  """The same IDX files (unzipped, or copied elsewhere) give the same fingerprint; other
  training images, or another num_train, another; the test images do not count."""
  import gzip
  import shutil

  from tiny_runs import write_fake_mnist

  from pipelines.mnist import IDX_FILES, MnistDataSet

  (tmp_path / "a").mkdir()
  a = write_fake_mnist(tmp_path / "a", num_train=60, num_test=20)
  original = MnistDataSet(a).fingerprint()
  unzipped = tmp_path / "unzipped"
  unzipped.mkdir()
  for name in IDX_FILES.values():
    (unzipped / name.removesuffix(".gz")).write_bytes(gzip.decompress((a / name).read_bytes()))
  assert MnistDataSet(unzipped).fingerprint() == original
  assert MnistDataSet(a, num_train=59).fingerprint() != original
  other_test = tmp_path / "other_test"
  shutil.copytree(a, other_test)
  (tmp_path / "b").mkdir()
  b = write_fake_mnist(tmp_path / "b", num_train=60, num_test=20, seed=1)
  shutil.copy(b / IDX_FILES["test_images"], other_test / IDX_FILES["test_images"])
  assert MnistDataSet(other_test).fingerprint() == original
  assert MnistDataSet(b).fingerprint() != original


# ------------------------------------------------------------------ captions (text as a modality)


@pytest.fixture(scope="module")
def tagged_dir(tmp_path_factory) -> Path:
  """60 training and 20 test images tagged with their index (labels: index % 10), as IDX
  files (not the published ones: the data set says so in one line)."""
  return write_idx_dir(tmp_path_factory.mktemp("tagged_mnist"), small_arrays(60, 20))


@pytest.fixture(scope="module")
def captioned(tagged_dir):
  """{mode: MnistDataSet with captions=mode}."""
  from pipelines.mnist import MnistDataSet

  return {mode: MnistDataSet(tagged_dir, captions=mode) for mode in ("instead", "added")}


def every(dataset: tf.data.Dataset) -> list[dict[str, np.ndarray]]:
  return list(dataset.as_numpy_iterator())


def stated(data, batches) -> np.ndarray:
  """The class each caption of `batches` states, by the data set's own parser."""
  vocabulary = data.modalities[-1].text
  texts = [t for b in batches for t in vocabulary.decode_numpy(b["caption"])]
  return data.read_text("caption", texts)


def texts_of(data, batches) -> list:
  vocabulary = data.modalities[-1].text
  return [t for b in batches for t in vocabulary.decode_numpy(b["caption"])]


def test_captions_instead_replace_the_label_and_added_join_it(captioned, tagged_dir) -> None:
  from jmvae_tf.core.text import Vocabulary
  from pipelines import captioning, captions
  from pipelines.mnist import MnistDataSet

  vocabulary = Vocabulary.build(captions.DIGITS.corpus(), captions.DIGITS.max_words + 1)
  expected = captioning.caption_modality(vocabulary)
  instead, added = captioned["instead"], captioned["added"]
  assert [m.name for m in instead.modalities] == ["image", "caption"]
  assert [m.name for m in added.modalities] == ["image", "label", "caption"]
  assert instead.modalities[-1] == added.modalities[-1] == expected
  assert expected.shape == (captions.DIGITS.max_words + 1, vocabulary.size)
  assert expected.to_dict()["vocabulary"] == list(vocabulary.tokens)
  for data, keys in ((instead, {"image", "caption"}), (added, {"image", "label", "caption"})):
    train = next(iter(data.train_dataset(10, seed=0)))
    test = next(iter(data.eval_dataset("test", 8)))
    assert set(train) == set(test) == keys
    assert train["caption"].shape == (10,) + expected.shape
    assert test["caption"].shape == (8,) + expected.shape
    assert data.read_text("label", ["a handwritten seven"]) is None
  plain = MnistDataSet(tagged_dir)
  assert [m.name for m in plain.modalities] == ["image", "label"]
  assert plain.read_text("caption", ["a handwritten seven"]) is None
  # the caption leaves the images, the labels and the fingerprint as they were
  assert instead.fingerprint() == plain.fingerprint()
  a = next(iter(plain.train_dataset(10, seed=2)))
  b = next(iter(added.train_dataset(10, seed=2)))
  np.testing.assert_array_equal(a["image"].numpy(), b["image"].numpy())
  np.testing.assert_array_equal(a["label"].numpy(), b["label"].numpy())


def test_each_caption_states_its_examples_class(captioned) -> None:
  instead, added = captioned["instead"], captioned["added"]
  train = take(added.train_dataset(10, seed=1), 12)  # two epochs
  np.testing.assert_array_equal(stated(added, train), concat(train, "label").argmax(-1))
  # without the label, the tagged image tells the example, whose label is its index % 10
  train = take(instead.train_dataset(10, seed=1), 12)
  np.testing.assert_array_equal(stated(instead, train), decode_indices(concat(train, "image")) % 10)
  for data in (instead, added):
    test = take(data.eval_dataset("test", 6), 4)
    np.testing.assert_array_equal(stated(data, test), data.classes("test", 20))
  # a caption no template makes states no class
  assert instead.read_text("caption", ["a handwritten [UNK]", "seven"]).tolist() == [-1, 7]


def test_training_captions_are_a_pure_function_of_seed_epoch_and_step(captioned) -> None:
  data = captioned["instead"]
  steps = data.steps_per_epoch(10)
  assert steps == 6
  first = take(data.train_dataset(10, seed=4), 2 * steps)
  again = take(data.train_dataset(10, seed=4), 2 * steps)
  resumed = take(data.train_dataset(10, seed=4, start_epoch=1), steps)
  for x, y in zip(first, again):
    np.testing.assert_array_equal(x["caption"], y["caption"])
  for x, y in zip(first[steps:], resumed):
    np.testing.assert_array_equal(x["caption"], y["caption"])
    np.testing.assert_array_equal(x["image"], y["image"])
  other = take(data.train_dataset(10, seed=5), steps)
  assert texts_of(data, other) != texts_of(data, first[:steps])
  # each example (told by its tagged image) gets its captions afresh each epoch
  by_epoch = []
  for epoch in (first[:steps], first[steps:]):
    indices = decode_indices(concat(epoch, "image"))
    assert sorted(indices) == list(range(60))
    texts = dict(zip(indices, texts_of(data, epoch)))
    by_epoch.append([texts[i] for i in range(60)])
  changed = sum(a != b for a, b in zip(*by_epoch))
  assert 20 <= changed < 60  # 7 templates: about 6 in 7 change
  assert len(set(by_epoch[0])) > 20  # and the wording varies within an epoch


def test_eval_captions_are_fixed_by_the_seed(captioned) -> None:
  data = captioned["added"]
  whole = texts_of(data, every(data.eval_dataset("test", 20)))
  assert texts_of(data, every(data.eval_dataset("test", 7))) == whole
  assert texts_of(data, every(data.eval_dataset("test", 20))) == whole  # another read
  assert texts_of(data, every(data.eval_dataset("test", 3, num_examples=8))) == whole[:8]
  assert texts_of(data, every(data.eval_dataset("test", 20, seed=0))) == whole
  other = texts_of(data, every(data.eval_dataset("test", 20, seed=1)))
  assert other != whole
  np.testing.assert_array_equal(data.read_text("caption", other), data.classes("test", 20))
  assert len(set(whole)) > 5  # not one template for all
  # the same captions whether they replace the label or join it
  instead = captioned["instead"]
  assert texts_of(instead, every(instead.eval_dataset("test", 20))) == whole


def test_the_metadata_has_the_captions_of_seed_0(captioned) -> None:
  for data in captioned.values():
    metadata = data.metadata("test", 12)
    assert list(metadata) == ["label", "caption"]
    np.testing.assert_array_equal(metadata["label"], data.classes("test", 12))
    decoded = texts_of(data, every(data.eval_dataset("test", 20, seed=0)))
    assert list(metadata["caption"]) == decoded[:12]


def test_short_captions_are_cut_and_said_once(tagged_dir, captioned, capsys, monkeypatch) -> None:
  from jmvae_tf.core import files
  from pipelines import captions
  from pipelines.mnist import MnistDataSet

  monkeypatch.setattr(files, "_WARNED", set())
  corpus = captions.DIGITS.corpus()
  over = sum(len(t.split()) > 2 for t in corpus)
  cut = MnistDataSet(tagged_dir, captions="instead", caption_tokens="3")
  MnistDataSet(tagged_dir, captions="instead", caption_tokens="3")
  lines = [line for line in capsys.readouterr().err.splitlines() if "not the published" not in line]
  assert lines == [
    f"warning: mnist captions: {over} of {len(corpus)} training captions have more than 2 "
    "words (caption_tokens=3, its end included); they are cut to 2, the longest has "
    f"{captions.DIGITS.max_words}"
  ]
  assert cut.modalities[-1].shape == (3, captioned["instead"].modalities[-1].shape[1])
  full = texts_of(captioned["instead"], every(captioned["instead"].eval_dataset("test", 20)))
  short = texts_of(cut, every(cut.eval_dataset("test", 20)))
  assert short == [" ".join(t.split()[:2]) for t in full]
  assert any(len(t.split()) > 2 for t in full)
  parsed = cut.read_text("caption", short)
  whole = np.array([len(t.split()) <= 2 for t in full])
  np.testing.assert_array_equal(parsed[whole], cut.classes("test", 20)[whole])
  assert np.all(parsed[~whole] == -1)  # a cut caption is no template's


def test_caption_vocabulary_keeps_the_most_frequent_words(tagged_dir) -> None:
  from jmvae_tf.core.text import Vocabulary
  from pipelines import captions
  from pipelines.mnist import MnistDataSet

  data = MnistDataSet(tagged_dir, captions="added", caption_vocabulary="12")
  corpus = captions.DIGITS.corpus()
  expected = Vocabulary.build(corpus, captions.DIGITS.max_words + 1, 12)
  assert data.modalities[-1].text == expected and expected.size == 12
  texts = texts_of(data, every(data.eval_dataset("test", 20)))
  assert any("[UNK]" in t for t in texts)
  words = {w for t in texts for w in t.split()}
  assert words <= set(expected.words) | {"[UNK]"}


def test_fashion_mnist_captions_state_the_item(tagged_dir) -> None:
  from jmvae_tf.core.text import Vocabulary
  from pipelines import captions
  from pipelines.mnist import FashionMnistDataSet

  data = FashionMnistDataSet(tagged_dir, captions="instead")
  assert [m.name for m in data.modalities] == ["image", "caption"]
  vocabulary = Vocabulary.build(captions.FASHION.corpus(), captions.FASHION.max_words + 1)
  assert data.modalities[-1].text == vocabulary
  test = every(data.eval_dataset("test", 20))
  texts = texts_of(data, test)
  np.testing.assert_array_equal(data.read_text("caption", texts), data.classes("test", 20))
  assert "a pair of trousers" in captions.FASHION.table()[1]
  train = take(data.train_dataset(10, seed=0), 6)
  np.testing.assert_array_equal(stated(data, train), decode_indices(concat(train, "image")) % 10)
  assert list(data.metadata("test", 5)["caption"]) == texts[:5]
