"""MNIST-like data: loading (IDX directory or TFDS), the paper's split, and
tf.data pipelines that yield stochastically binarised images.

Everything random here is *stateless*: a batch is a pure function of
(seed, epoch, step) for training and of (seed, example index) for
evaluation.  That makes runs exactly reproducible and lets a run resumed at
epoch ``e`` see the very batches an uninterrupted run would have seen.

This module knows nothing about models; its output elements are dicts
``{'image': float32 [B, H, W, 1] in {0, 1}, 'label': float32 one-hot [B, C]}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from jmvae_tf.core import missing
from jmvae_tf.core.data import SPLITS, DataError, DataSet, check_options, digest
from jmvae_tf.core.files import warn_once
from jmvae_tf.core.likelihoods import BERNOULLI, CATEGORICAL
from jmvae_tf.core.modalities import IMAGE, Modality
from jmvae_tf.core.own_data import TRAIN_BITS_STREAM
from pipelines import captioning, captions
from pipelines.idx import IdxError, PathLike, read_idx

NUM_CLASSES = 10
PAPER_NUM_TRAIN = 50_000
IMAGE_SIZE = (28, 28)  # what MNIST and Fashion-MNIST are, and the paper's networks (784 pixels)

IDX_FILES: dict[str, str] = {
  "train_images": "train-images-idx3-ubyte.gz",
  "train_labels": "train-labels-idx1-ubyte.gz",
  "test_images": "t10k-images-idx3-ubyte.gz",
  "test_labels": "t10k-labels-idx1-ubyte.gz",
}

TFDS_NAMES = ("mnist", "fashion_mnist")
TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}

# SHA-256 of the unpacked IDX files as published, so that a folder of the other data set's
# files is refused by name: MNIST's (LeCun, Cortes and Burges; the same as
# ../shared/data/README.md lists), Fashion-MNIST's (Zalando's release as Debian's
# dataset-fashion-mnist package ships it, unpacked).
PUBLISHED_SHA256: dict[str, dict[str, str]] = {
  "mnist": {
    "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
  },
  "fashion_mnist": {
    "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
  },
}

# Arbitrary constants that separate the random streams derived from one seed,
# so that the training bits, the eval bits and the order are independent.
_TRAIN_BITS_STREAM = TRAIN_BITS_STREAM  # shared with OwnDataSet, whose bits equal these
_EVAL_BITS_STREAM = 0x0E7A_B175


def mnist_modalities(num_classes: int = NUM_CLASSES, image_shape=IMAGE_SIZE + (1,)):
  """The paper's MNIST pair: x = binarised image, w = one-hot label."""
  return (
    Modality("image", BERNOULLI, image_shape, IMAGE),
    Modality("label", CATEGORICAL, (num_classes,)),
  )


# --------------------------------------------------------------------------
# Arrays in memory.


@dataclasses.dataclass(frozen=True)
class LabelledImages:
  """uint8 images [N, H, W] with their integer class labels [N]."""

  images: np.ndarray
  labels: np.ndarray

  @property
  def num_examples(self) -> int:
    return int(self.images.shape[0])


@dataclasses.dataclass(frozen=True)
class ImageLabelArrays:
  """The official train and test parts of an MNIST-like data set."""

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray


@dataclasses.dataclass(frozen=True)
class Splits:
  """The paper's split: train, optional validation, and test."""

  train: LabelledImages
  validation: Optional[LabelledImages]
  test: LabelledImages


def load_idx_dir(data_dir: PathLike) -> ImageLabelArrays:
  """Reads the four MNIST IDX files (``.gz`` or unzipped) from a directory.

  Fails before reading anything when a file is missing, so the message lists
  every missing file at once.
  """
  data_dir = Path(data_dir)
  if not data_dir.is_dir():
    raise DataError(f"{data_dir}: data directory does not exist")
  paths, missing = _find_idx_files(data_dir)
  if missing:
    raise DataError(f"{data_dir}: missing IDX files: {', '.join(missing)}")

  train_images = _read_images(paths["train_images"])
  train_labels = _read_labels(paths["train_labels"])
  test_images = _read_images(paths["test_images"])
  test_labels = _read_labels(paths["test_labels"])
  _check_pair(train_images, train_labels, f"{paths['train_images']} vs {paths['train_labels']}")
  _check_pair(test_images, test_labels, f"{paths['test_images']} vs {paths['test_labels']}")
  _check_same_image_shape(
    train_images, test_images, f"{paths['train_images']} vs {paths['test_images']}"
  )
  return ImageLabelArrays(train_images, train_labels, test_images, test_labels)


def _find_idx_files(data_dir: Path) -> tuple[dict[str, Path], list[str]]:
  """Maps each role to its file, preferring ``.gz``; also returns the missing names."""
  found: dict[str, Path] = {}
  missing: list[str] = []
  for role, gz_name in IDX_FILES.items():
    candidates = [data_dir / gz_name, data_dir / gz_name.removesuffix(".gz")]
    existing = [path for path in candidates if path.is_file()]
    if existing:
      found[role] = existing[0]
    else:
      missing.append(gz_name)
  return found, missing


def _read_images(path: Path) -> np.ndarray:
  images = read_idx(path)
  if images.ndim != 3 or images.dtype != np.uint8:
    raise IdxError(f"{path}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
  if images.shape[1:] != IMAGE_SIZE:
    raise IdxError(
      f"{path}: expected {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} images (MNIST's), "
      f"got {images.shape[1]}x{images.shape[2]}"
    )
  return images


def _read_labels(path: Path) -> np.ndarray:
  labels = read_idx(path)
  if labels.ndim != 1 or labels.dtype != np.uint8:
    raise IdxError(f"{path}: expected uint8 labels [N], got {labels.dtype} {labels.shape}")
  return labels


def _check_pair(images: np.ndarray, labels: np.ndarray, what: str) -> None:
  """Images and labels must have equal counts and labels must be classes."""
  if images.shape[0] != labels.shape[0]:
    raise DataError(f"{what}: {images.shape[0]} images but {labels.shape[0]} labels")
  if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
    raise DataError(
      f"{what}: labels outside 0..{NUM_CLASSES - 1} (min {labels.min()}, max {labels.max()})"
    )


def _check_same_image_shape(train: np.ndarray, test: np.ndarray, what: str) -> None:
  if train.shape[1:] != test.shape[1:]:
    raise DataError(f"{what}: image shapes differ, {train.shape[1:]} vs {test.shape[1:]}")


def idx_sha256(array: np.ndarray) -> str:
  """The SHA-256 of the uint8 IDX file holding `array` (its header, then its bytes): that of
  the unpacked file it was read from, without reading the file again."""
  header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
  h = hashlib.sha256(header)
  h.update(np.ascontiguousarray(array).data)
  return h.hexdigest()


def recognise(arrays: ImageLabelArrays) -> Optional[str]:
  """ "mnist" or "fashion_mnist" where the four arrays are that data set's published files,
  else None."""
  sums = {role: idx_sha256(getattr(arrays, role)) for role in IDX_FILES}
  return next((name for name, known in PUBLISHED_SHA256.items() if known == sums), None)


def check_published(arrays: ImageLabelArrays, expected: str, where: str) -> None:
  """A DataError where `arrays` are the other data set's published files (named); one line
  saying so where they are not the published files of `expected` (accepted as they are)."""
  found = recognise(arrays)
  if found == expected:
    return
  if found is not None:
    raise DataError(
      f"{where} holds {TITLES[found]}'s published files, not {TITLES[expected]}'s "
      f"(--dataset={found} reads them)"
    )
  warn_once(
    f"{where}: not the published {TITLES[expected]} files (their checksums differ); "
    "read as they are"
  )


def load_tfds(name: str, data_dir: Optional[PathLike] = None) -> ImageLabelArrays:
  """Loads 'mnist' or 'fashion_mnist' through TFDS as whole numpy arrays."""
  if name not in TFDS_NAMES:
    raise DataError(f"unknown TFDS data set {name!r}; expected one of {TFDS_NAMES}")
  import tensorflow_datasets as tfds  # Imported lazily: slow and often unneeded.

  train, test = tfds.load(
    name,
    split=["train", "test"],
    as_supervised=True,
    data_dir=None if data_dir is None else str(data_dir),
  )
  train_images, train_labels = _collect(tfds, train, f"tfds {name} train")
  test_images, test_labels = _collect(tfds, test, f"tfds {name} test")
  _check_pair(train_images, train_labels, f"tfds {name} train")
  _check_pair(test_images, test_labels, f"tfds {name} test")
  _check_same_image_shape(train_images, test_images, f"tfds {name} train vs test")
  return ImageLabelArrays(train_images, train_labels, test_images, test_labels)


_TFDS_COLLECT_BATCH = 10_000


def _collect(tfds, dataset: tf.data.Dataset, what: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads a supervised TFDS split into uint8 images [N, H, W] and labels [N].

  Why not ``batch_size=-1``: when the split sizes are unknown (e.g. under
  ``tfds.testing.mock_data`` without metadata) TFDS batches by sys.maxsize
  and the process aborts in C++; fixed-size batches joined in numpy are as
  fast and always safe.
  """
  image_batches, label_batches = [], []
  for images, labels in tfds.as_numpy(dataset.batch(_TFDS_COLLECT_BATCH)):
    image_batches.append(images)
    label_batches.append(labels)
  if not image_batches:
    raise DataError(f"{what}: split is empty")
  images = _squeeze_channel(np.concatenate(image_batches), what)
  labels = np.concatenate(label_batches)
  if labels.ndim != 1 or labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
    raise DataError(f"{what}: expected labels [N] in 0..{NUM_CLASSES - 1}")
  return images, labels.astype(np.uint8)


def _squeeze_channel(images: np.ndarray, what: str) -> np.ndarray:
  if images.ndim != 4 or images.shape[-1] != 1 or images.dtype != np.uint8:
    raise DataError(f"{what}: expected uint8 [N, H, W, 1], got {images.dtype} {images.shape}")
  return images[..., 0]


def load_arrays(data_dir: Optional[PathLike] = None, tfds_name: str = "mnist") -> ImageLabelArrays:
  """IDX files from ``data_dir`` when given, otherwise TFDS ``tfds_name``."""
  if data_dir is not None:
    return load_idx_dir(data_dir)
  return load_tfds(tfds_name)


def split(arrays: ImageLabelArrays, num_train: int = 50_000, validation: bool = False) -> Splits:
  """The paper's split: the first ``num_train`` training images for training,
  the rest of the training images for validation (when asked), and the test
  images for test."""
  available = arrays.train_images.shape[0]
  if available < num_train:
    raise DataError(f"split: need {num_train} training images, only {available} available")
  if validation and available == num_train:
    raise DataError(f"split: no training images left for validation after {num_train}")
  train = LabelledImages(arrays.train_images[:num_train], arrays.train_labels[:num_train])
  held_out = (
    LabelledImages(arrays.train_images[num_train:], arrays.train_labels[num_train:])
    if validation
    else None
  )
  test = LabelledImages(arrays.test_images, arrays.test_labels)
  return Splits(train=train, validation=held_out, test=test)


# --------------------------------------------------------------------------
# tf.data pipelines.


def binarize(intensities: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Stochastic binarisation: each pixel is 1 with probability = its intensity.

  ``intensities`` are floats in [0, 1]; ``seed`` is a shape-[2] integer
  stateless seed.  Returns float32 of the same shape with values in {0, 1}.
  """
  intensities = tf.convert_to_tensor(intensities, tf.float32)
  noise = tf.random.stateless_uniform(tf.shape(intensities), seed=seed, dtype=tf.float32)
  return tf.cast(noise < intensities, tf.float32)


def steps_per_epoch(num_examples: int, batch_size: int, drop_remainder: bool = True) -> int:
  """Batches per epoch: full batches only, or plus the last partial one."""
  if drop_remainder:
    return num_examples // batch_size
  return -(-num_examples // batch_size)


def train_dataset(
  images: np.ndarray,
  labels: np.ndarray,
  batch_size: int,
  seed: int,
  start_epoch: int = 0,
  num_classes: int = NUM_CLASSES,
  drop_remainder: bool = True,
  captioner=None,
  presence=None,
) -> tf.data.Dataset:
  """Infinite batches for epochs ``start_epoch, start_epoch + 1, ...``.

  Batch ``step`` of epoch ``e`` holds the examples at positions
  ``step * batch_size ...`` of the stateless permutation
  ``index_shuffle(seed=[seed, e])`` with fresh bits keyed on
  (seed, e, step).  The dataset is a counter of global batch numbers mapped
  (in parallel, deterministically) to batches, so nothing is materialised
  per epoch and starting at any epoch costs nothing.

  ``captioner`` (a ``pipelines.captioning.Captioner``): each example also gets a caption of
  its class, under a template keyed on (seed, e, step); the label stays or goes as its
  options say. ``presence`` ({modality: bool [N]} tensors, ``jmvae_tf.core.missing``): each
  batch carries its examples' masks, their absent values zeros.
  """
  images_tensor, labels_tensor = _to_tensors(images, labels, "train_dataset")
  num_examples = int(images_tensor.shape[0])
  steps = steps_per_epoch(num_examples, batch_size, drop_remainder)
  if batch_size <= 0 or steps == 0:
    raise ValueError(
      f"train_dataset: batch_size {batch_size} gives no batches for {num_examples} examples"
    )
  seed = int(seed)

  def make_batch(global_step: tf.Tensor) -> dict[str, tf.Tensor]:
    epoch = global_step // steps
    step = global_step % steps
    epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
    positions = tf.range(step * batch_size, tf.minimum((step + 1) * batch_size, num_examples))
    example_indices = tf.random.experimental.index_shuffle(
      positions, seed=epoch_seed, max_index=tf.constant(num_examples - 1, tf.int64)
    )
    bits_seed = tf.random.experimental.stateless_fold_in(
      tf.random.experimental.stateless_fold_in(epoch_seed, _TRAIN_BITS_STREAM), step
    )
    intensities = tf.cast(tf.gather(images_tensor, example_indices), tf.float32) / 255.0
    classes = tf.gather(labels_tensor, example_indices)
    batch = {
      "image": binarize(intensities, bits_seed)[..., tf.newaxis],
      "label": tf.one_hot(classes, num_classes),
    }
    if captioner is not None:
      templates = captioner.train_templates(tf.size(classes), epoch_seed, step)
      batch = captioning.with_caption(batch, captioner, captioner.tokens(classes, templates))
    batch = missing.gather(presence, batch, example_indices)
    if drop_remainder:
      batch = {
        key: value if key == missing.PRESENT else _fix_batch_dim(value, batch_size)
        for key, value in batch.items()
      }
    return batch

  start_step = int(start_epoch) * steps
  return (
    tf.data.Dataset.counter(start=start_step, dtype=tf.int64)
    .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    .prefetch(tf.data.AUTOTUNE)
  )


def eval_dataset(
  images: np.ndarray,
  labels: np.ndarray,
  batch_size: int,
  seed: int = 0,
  num_classes: int = NUM_CLASSES,
  captioner=None,
) -> tf.data.Dataset:
  """All examples in order (last partial batch kept), binarised once.

  The whole set is binarised up front with one stateless draw keyed on
  ``seed``, so an example's bits depend only on (seed, its index): every
  read, and every batch size, sees the same bits; so are the captions'
  templates where there is a ``captioner``.
  """
  images_tensor, labels_tensor = _to_tensors(images, labels, "eval_dataset")
  if batch_size <= 0:
    raise ValueError(f"eval_dataset: batch_size must be positive, got {batch_size}")
  eval_seed = tf.constant([int(seed), _EVAL_BITS_STREAM], tf.int64)
  bits = tf.cast(binarize(tf.cast(images_tensor, tf.float32) / 255.0, eval_seed), tf.uint8)
  templates = None
  if captioner is not None:
    templates = captioner.eval_templates(int(images_tensor.shape[0]), seed)

  def make_batch(example_indices: tf.Tensor) -> dict[str, tf.Tensor]:
    classes = tf.gather(labels_tensor, example_indices)
    batch = {
      "image": tf.cast(tf.gather(bits, example_indices), tf.float32)[..., tf.newaxis],
      "label": tf.one_hot(classes, num_classes),
    }
    if captioner is None:
      return batch
    tokens = captioner.tokens(classes, tf.gather(templates, example_indices))
    return captioning.with_caption(batch, captioner, tokens)

  return (
    tf.data.Dataset.range(int(images_tensor.shape[0]))
    .batch(batch_size)
    .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    .prefetch(tf.data.AUTOTUNE)
  )


def _to_tensors(images: np.ndarray, labels: np.ndarray, what: str) -> tuple[tf.Tensor, tf.Tensor]:
  """Validates and moves the arrays into memory-resident tensors, once."""
  images = np.asarray(images)
  labels = np.asarray(labels)
  if images.ndim != 3 or images.dtype != np.uint8:
    raise ValueError(f"{what}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
  if labels.shape != images.shape[:1]:
    raise ValueError(f"{what}: labels shape {labels.shape} does not match {images.shape[0]} images")
  return tf.constant(images), tf.constant(labels.astype(np.int32))


def _fix_batch_dim(value: tf.Tensor, batch_size: int) -> tf.Tensor:
  """Gives full batches a static leading dimension (helps tf.function/XLA)."""
  return tf.ensure_shape(value, [batch_size] + value.shape[1:].as_list())


# --------------------------------------------------------------------------
# The data sets of the registry.


class MnistDataSet(captioning.Captioned, DataSet):
  """MNIST: x = a 28x28 image binarised stochastically (fresh bits every
  epoch, fixed bits for evaluation), w = its one-hot label; the paper's split
  (the first ``num_train`` training images, the rest as validation when
  asked, the official test set). Read from the four IDX files in
  ``data_dir``, or through TFDS when ``data_dir`` is None.

  With ``captions=instead`` (or ``added``) the label becomes (or is joined by) a caption of
  the class from a small grammar, e.g. "a handwritten seven", "the digit 7"
  (``pipelines.captioning``: the captions come from the labels, there is no caption corpus)."""

  name = "mnist"
  architecture = "mnist_mlp"
  tfds_name = "mnist"
  grammar = captions.DIGITS

  def __init__(
    self,
    data_dir: Optional[PathLike] = None,
    num_train: Optional[int] = None,
    validation: bool = False,
    **options: str,
  ):
    self.options = check_options(self.name, options, {**captioning.OPTIONS, missing.OPTION: ()})
    caption_options, _ = captioning.take_options(self.name, options)
    arrays = load_arrays(data_dir, self.tfds_name)
    if data_dir is not None:  # TFDS checks its own downloads
      check_published(arrays, self.tfds_name, f"--data_dir={data_dir}")
    if num_train is None:  # the paper's 50,000, or all of a smaller set
      num_train = min(PAPER_NUM_TRAIN, arrays.train_images.shape[0] - int(validation))
    self.splits = split(arrays, num_train, validation)
    self.captioner = None
    if caption_options is not None:
      self.captioner = captioning.Captioner(
        self.name, self.grammar, caption_options, self.grammar.corpus()
      )
    self.take_missing(options)

  @property
  def modalities(self) -> tuple[Modality, ...]:
    height, width = self.splits.train.images.shape[1:]
    return self.captioned(mnist_modalities(NUM_CLASSES, (height, width, 1)))

  def _part(self, split_name: str) -> Optional[LabelledImages]:
    return getattr(self.splits, split_name)

  def num_examples(self, split: str) -> int:
    part = self._part(split) if split in SPLITS else None
    return 0 if part is None else part.num_examples

  def train_dataset(self, batch_size: int, seed: int, start_epoch: int = 0) -> tf.data.Dataset:
    self.check_batch_size(batch_size)
    train = self.splits.train
    return train_dataset(
      train.images,
      train.labels,
      batch_size,
      seed,
      start_epoch,
      captioner=self.captioner,
      presence=missing.as_tensors(self.presence(seed)),
    )

  def eval_dataset(
    self, split: str, batch_size: int, seed: int = 0, num_examples: Optional[int] = None
  ) -> tf.data.Dataset:
    n = self.check_split(split, num_examples)
    part = self._part(split)
    return eval_dataset(
      part.images[:n], part.labels[:n], batch_size, seed=seed, captioner=self.captioner
    )

  def display_images(self, split: str, num_examples: int, seed: int = 0) -> np.ndarray:
    return self._part(split).images[: self.check_split(split, num_examples)]

  def fingerprint(self, num_train: Optional[int] = None) -> str:
    return digest(self.splits.train.images[:num_train], self.splits.train.labels[:num_train])

  def metadata(self, split: str, num_examples: int) -> dict[str, np.ndarray]:
    classes = self.classes(split, num_examples)
    if self.captioner is None:
      return {"label": classes}
    texts = self.captioner.held_out_texts(classes, self.num_examples(split))
    return {"label": classes, captioning.CAPTION: texts}

  def classes(self, split: str, num_examples: int) -> np.ndarray:
    return self._part(split).labels[: self.check_split(split, num_examples)].astype(np.int64)


class FashionMnistDataSet(MnistDataSet):
  """Fashion-MNIST: MNIST's format and split, clothes instead of digits."""

  name = "fashion_mnist"
  tfds_name = "fashion_mnist"
  grammar = captions.FASHION
