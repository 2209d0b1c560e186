"""The three-modality data set (pipelines/mnist_fashion.py): a digit, a Fashion item of its
class, the label; pairings that are pure functions of (seed, epoch, step), fixed ones for
evaluation, and one-line refusals of bad files. On small random IDX files written here (the
real ones are checked where the machine has them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from idx_writer import write_idx
from tiny_runs import write_fake_mnist

from jmvae_tf.core.data import DataError
from pipelines import mnist, registry
from pipelines.idx import read_idx
from pipelines.mnist_fashion import MnistFashionDataSet, class_table, partners

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist


def fake(directory: Path, seed: int, num_train=300, num_test=100) -> Path:
  directory.mkdir(parents=True, exist_ok=True)
  return write_fake_mnist(directory, num_train=num_train, num_test=num_test, seed=seed)


def labels_of(directory: Path, part: str) -> np.ndarray:
  return read_idx(directory / mnist.IDX_FILES[f"{part}_labels"]).astype(np.int64)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
  root = tmp_path_factory.mktemp("mnist_fashion")
  return fake(root / "digits", 0), fake(root / "fashion", 1)


@pytest.fixture(scope="module")
def data(dirs):
  digits, fashion = dirs
  return MnistFashionDataSet(digits, num_train=200, fashion_dir=str(fashion))


def test_modalities_and_the_registry(dirs, data):
  assert [(m.name, m.kind, m.shape) for m in data.modalities] == [
    ("digit", "bernoulli", (28, 28, 1)),
    ("fashion", "bernoulli", (28, 28, 1)),
    ("label", "categorical", (10,)),
  ]
  made = registry.make_dataset(
    "mnist_fashion", str(dirs[0]), 200, options=[f"fashion_dir={dirs[1]}"]
  )
  assert made.num_examples("train") == 200 and made.num_examples("test") == 100
  assert made.fingerprint() == data.fingerprint()


def test_partners_are_of_the_same_class_and_uniform_within_it():
  """partners() draws, for each class, one of that class's images, every one of them about
  equally often, as a pure function of the seed."""
  rng = np.random.default_rng(3)
  fashion_labels = rng.integers(0, 10, 500)
  table = class_table(fashion_labels)
  wanted = tf.constant(np.repeat(np.arange(10), 400))
  drawn = partners(wanted, table, tf.constant([5, 6], tf.int64)).numpy()
  np.testing.assert_array_equal(fashion_labels[drawn], wanted.numpy())
  again = partners(wanted, table, tf.constant([5, 6], tf.int64)).numpy()
  np.testing.assert_array_equal(drawn, again)
  other = partners(wanted, table, tf.constant([5, 7], tf.int64)).numpy()
  assert not np.array_equal(drawn, other)
  for c in range(10):  # 400 draws among ~50 images: each drawn, none far more than its share
    of_c = drawn[wanted.numpy() == c]
    counts = np.bincount(of_c, minlength=len(fashion_labels))[fashion_labels == c]
    assert counts.min() >= 1 and counts.max() <= 4 * 400 / len(counts)


def test_evaluation_pairs_are_of_the_same_class_and_fixed_by_the_seed(dirs, data):
  digits, fashion = dirs
  pairs = data.eval_pairs("test")
  np.testing.assert_array_equal(labels_of(fashion, "test")[pairs], labels_of(digits, "test"))
  np.testing.assert_array_equal(data.eval_pairs("test"), pairs)
  assert not np.array_equal(data.eval_pairs("test", seed=1), pairs)
  a = next(iter(data.eval_dataset("test", 100)))
  b = [batch for batch in data.eval_dataset("test", 7)]
  for name in ("digit", "fashion", "label"):
    np.testing.assert_array_equal(a[name].numpy(), np.concatenate([x[name] for x in b]))
  np.testing.assert_array_equal(a["label"].numpy().argmax(-1), data.classes("test", 100))
  assert set(np.unique(a["fashion"].numpy())) == {0.0, 1.0}


def test_the_training_stream_is_a_pure_function_of_seed_epoch_and_step(data):
  """Two streams with one seed agree; a stream started at epoch 1 is the first's epoch 1;
  another epoch pairs each digit with other items (and draws other bits)."""
  steps = data.steps_per_epoch(50)
  first = [b for b in data.train_dataset(50, seed=4).take(2 * steps)]
  again = [b for b in data.train_dataset(50, seed=4).take(2 * steps)]
  resumed = [b for b in data.train_dataset(50, seed=4, start_epoch=1).take(steps)]
  for name in ("digit", "fashion", "label"):
    for x, y in zip(first, again):
      np.testing.assert_array_equal(x[name].numpy(), y[name].numpy())
    for x, y in zip(first[steps:], resumed):
      np.testing.assert_array_equal(x[name].numpy(), y[name].numpy())
  epoch0 = np.concatenate([b["fashion"].numpy() for b in first[:steps]])
  epoch1 = np.concatenate([b["fashion"].numpy() for b in first[steps:]])
  assert not np.array_equal(epoch0, epoch1)
  # every digit's label is its own: the epoch's labels are a permutation of the split's
  labels = np.concatenate([b["label"].numpy().argmax(-1) for b in first[:steps]])
  np.testing.assert_array_equal(np.sort(labels), np.sort(data.classes("train", 200)))


def test_the_training_items_are_of_the_digits_class(dirs):
  """Binarised images cannot be told apart, so a data set of constant-grey Fashion images,
  one grey level per class, shows which class each item came from (its share of 1 bits)."""
  digits, fashion = dirs
  flat = fashion.parent / "flat_fashion"
  flat.mkdir()
  from idx_writer import write_idx

  for part, n in (("train", 300), ("test", 100)):
    labels = np.tile(np.arange(10, dtype=np.uint8), n // 10)
    images = np.broadcast_to((labels * 25 + 10)[:, None, None], (n, 28, 28)).astype(np.uint8)
    write_idx(flat / mnist.IDX_FILES[f"{part}_images"], images)
    write_idx(flat / mnist.IDX_FILES[f"{part}_labels"], labels)
  data = MnistFashionDataSet(digits, num_train=200, fashion_dir=str(flat))
  batch = next(iter(data.train_dataset(200, seed=0)))
  grey = batch["fashion"].numpy().reshape(200, -1).mean(-1)
  expected = (batch["label"].numpy().argmax(-1) * 25 + 10) / 255
  np.testing.assert_allclose(grey, expected, atol=0.06)


@pytest.mark.parametrize(
  "case, message",
  [
    ("no_fashion_dir", "give both --data_dir"),
    ("same_as_mnist", "holds the same images as --data_dir"),
    ("missing_files", "missing IDX files"),
    ("unknown_option", "mnist_fashion has no option 'crop'"),
  ],
)
def test_bad_or_mismatched_files_are_one_line(dirs, tmp_path, case, message):
  digits, fashion = dirs
  options = {
    "no_fashion_dir": {},
    "same_as_mnist": {"fashion_dir": str(digits)},
    "missing_files": {"fashion_dir": str(tmp_path)},
    "unknown_option": {"fashion_dir": str(fashion), "crop": "paper"},
  }[case]
  with pytest.raises(DataError, match=message) as refused:
    MnistFashionDataSet(digits, **options)
  assert "\n" not in str(refused.value)


def test_a_class_without_items_is_refused(dirs, tmp_path):
  digits, fashion = dirs
  from idx_writer import write_idx

  shutil_dir = tmp_path / "no_bags"
  shutil_dir.mkdir()
  for part in ("train", "test"):
    labels = labels_of(fashion, part)
    labels[labels == 8] = 0
    write_idx(shutil_dir / mnist.IDX_FILES[f"{part}_labels"], labels.astype(np.uint8))
    images = read_idx(fashion / mnist.IDX_FILES[f"{part}_images"])
    write_idx(shutil_dir / mnist.IDX_FILES[f"{part}_images"], images)
  with pytest.raises(DataError, match="Fashion-MNIST's train images have no 'Bag'"):
    MnistFashionDataSet(digits, fashion_dir=str(shutil_dir))


def test_the_fingerprint_covers_both_image_sets(dirs, tmp_path, data):
  other = fake(tmp_path / "other_fashion", 2)
  changed = MnistFashionDataSet(dirs[0], num_train=200, fashion_dir=str(other))
  assert changed.fingerprint() != data.fingerprint()


def test_tensorflow_datasets_without_any_directory():
  import tensorflow_datasets as tfds

  with tfds.testing.mock_data(num_examples=300):
    data = registry.make_dataset("mnist_fashion", num_train=200)
  assert data.num_examples("train") == 200
  batch = next(iter(data.train_dataset(20, seed=0)))
  assert batch["fashion"].shape == (20, 28, 28, 1)


def test_the_real_files_pair_digits_with_items_of_their_class(mnist_dir):
  if not (FASHION_DIR / mnist.IDX_FILES["train_images"]).is_file():
    pytest.skip(f"Fashion-MNIST not at {FASHION_DIR}: apt-get install dataset-fashion-mnist")
  data = MnistFashionDataSet(mnist_dir, fashion_dir=str(FASHION_DIR))
  assert data.num_examples("train") == 50_000 and data.num_examples("test") == 10_000
  pairs = data.eval_pairs("test")
  np.testing.assert_array_equal(labels_of(FASHION_DIR, "test")[pairs], data.classes("test", 10_000))


def test_the_published_files_are_recognised_and_swapped_folders_refused(
  mnist_dir, tmp_path, capsys
):
  """Issue 30: the two folders swapped, or a fashion_dir of MNIST's files with one image
  changed, trained. The published files are known by their SHA-256: the other data set's are
  refused by name; files that are not the published ones are read with one line saying so."""
  if not (FASHION_DIR / mnist.IDX_FILES["train_images"]).is_file():
    pytest.skip(f"Fashion-MNIST not at {FASHION_DIR}: apt-get install dataset-fashion-mnist")
  assert mnist.recognise(mnist.load_idx_dir(mnist_dir)) == "mnist"
  assert mnist.recognise(mnist.load_idx_dir(FASHION_DIR)) == "fashion_mnist"
  with pytest.raises(DataError) as refused:
    MnistFashionDataSet(str(FASHION_DIR), fashion_dir=str(mnist_dir))
  assert str(refused.value) == (
    f"--data_dir={FASHION_DIR} holds Fashion-MNIST's published files, not MNIST's "
    "(--dataset=fashion_mnist reads them)"
  )
  with pytest.raises(DataError, match=r"holds Fashion-MNIST's published files, not MNIST's"):
    mnist.MnistDataSet(str(FASHION_DIR))
  with pytest.raises(DataError, match=r"holds MNIST's published files, not Fashion-MNIST's"):
    mnist.FashionMnistDataSet(str(mnist_dir))
  # MNIST's files with one image changed, as fashion_dir: not Fashion-MNIST's, said, read.
  changed = tmp_path / "changed"
  changed.mkdir()
  arrays = mnist.load_idx_dir(mnist_dir)
  images = arrays.train_images.copy()
  images[0, 0, 0] ^= 1
  for role, array in (
    ("train_images", images),
    ("train_labels", arrays.train_labels),
    ("test_images", arrays.test_images),
    ("test_labels", arrays.test_labels),
  ):
    write_idx(changed / mnist.IDX_FILES[role], array)
  capsys.readouterr()
  MnistFashionDataSet(mnist_dir, num_train=200, fashion_dir=str(changed))
  err = capsys.readouterr().err
  assert f"fashion_dir={changed}: not the published Fashion-MNIST files" in err


# --- captions: "a seven beside a sneaker" ------------------------------------------------------


@pytest.fixture(scope="module")
def captioned(dirs):
  """{mode: the data set with captions=mode}."""
  digits, fashion = dirs
  return {
    mode: MnistFashionDataSet(digits, num_train=200, fashion_dir=str(fashion), captions=mode)
    for mode in ("instead", "added")
  }


def texts_of(data, batches) -> list:
  vocabulary = data.modalities[-1].text
  return [t for b in batches for t in vocabulary.decode_numpy(b["caption"])]


def test_captions_replace_or_join_the_label_with_the_grammars_vocabulary(captioned, data):
  from jmvae_tf.core.text import Vocabulary
  from pipelines import captions

  grammar = captions.DIGIT_AND_FASHION
  vocabulary = Vocabulary.build(grammar.corpus(), grammar.max_words + 1)
  instead, added = captioned["instead"], captioned["added"]
  assert [m.name for m in instead.modalities] == ["digit", "fashion", "caption"]
  assert [m.name for m in added.modalities] == ["digit", "fashion", "label", "caption"]
  assert instead.modalities[-1].text == added.modalities[-1].text == vocabulary
  assert instead.modalities[-1].kind == "tokens" and instead.modalities[-1].family == "sequence"
  for made, keys in (
    (instead, {"digit", "fashion", "caption"}),
    (added, {"digit", "fashion", "label", "caption"}),
  ):
    batch = next(iter(made.train_dataset(50, seed=0)))
    assert set(batch) == keys and batch["caption"].shape == (50,) + vocabulary.shape
    assert set(next(iter(made.eval_dataset("test", 10)))) == keys
  assert instead.fingerprint() == data.fingerprint()
  assert data.read_text("caption", ["a seven beside a sneaker"]) is None


def test_each_caption_states_the_pairs_class(captioned):
  instead, added = captioned["instead"], captioned["added"]
  train = [b for b in added.train_dataset(50, seed=2).take(8)]  # two epochs
  texts = texts_of(added, train)
  labels = np.concatenate([b["label"].numpy().argmax(-1) for b in train])
  np.testing.assert_array_equal(added.read_text("caption", texts), labels)
  # the same captions (of the same examples) where they replace the label
  assert texts_of(instead, [b for b in instead.train_dataset(50, seed=2).take(8)]) == texts
  for made in (instead, added):
    test = texts_of(made, made.eval_dataset("test", 30))
    np.testing.assert_array_equal(made.read_text("caption", test), made.classes("test", 100))
  assert instead.read_text(
    "caption", ["a seven beside a bag", "a seven beside a sneaker"]
  ).tolist() == [
    -1,
    7,
  ]


def test_caption_streams_are_pure_functions_of_seed_epoch_and_step(captioned):
  data = captioned["instead"]
  steps = data.steps_per_epoch(50)
  first = [b for b in data.train_dataset(50, seed=4).take(2 * steps)]
  again = [b for b in data.train_dataset(50, seed=4).take(2 * steps)]
  resumed = [b for b in data.train_dataset(50, seed=4, start_epoch=1).take(steps)]
  assert texts_of(data, again) == texts_of(data, first)
  assert texts_of(data, resumed) == texts_of(data, first[steps:])
  assert texts_of(data, data.train_dataset(50, seed=5).take(steps)) != texts_of(data, first[:steps])
  # another epoch, other wording: the epochs' captions of each class are not the same multiset
  epoch0, epoch1 = texts_of(data, first[:steps]), texts_of(data, first[steps:])
  assert sorted(epoch0) != sorted(epoch1)
  # held out: fixed by the seed, whatever the batch size, the read or the number asked
  whole = texts_of(data, data.eval_dataset("test", 100))
  assert texts_of(data, data.eval_dataset("test", 7)) == whole
  assert texts_of(data, data.eval_dataset("test", 9, num_examples=40)) == whole[:40]
  assert texts_of(data, data.eval_dataset("test", 100, seed=1)) != whole
  assert list(data.metadata("test", 25)["caption"]) == whole[:25]
  assert list(data.metadata("test", 25)) == ["label", "item", "caption"]
