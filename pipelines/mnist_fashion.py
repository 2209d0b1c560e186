"""Three modalities from real data: a MNIST digit, a Fashion-MNIST item of the same class index
(0 T-shirt/top ... 9 ankle boot) and the one-hot label (`--dataset=mnist_fashion`).

Each example is one of MNIST's (the paper's split: its first `num_train` training images, the
rest as validation when asked, its test set) with a Fashion-MNIST partner of its class: in
training a new partner every epoch, drawn uniformly from Fashion-MNIST's training images of
that class (6,000 each) as a pure function of (seed, epoch, step), so a resumed run reads what
an uninterrupted one would have; in evaluation a partner fixed by the seed, from Fashion-MNIST's
test images of the class for the test split (its training images for validation). An epoch
thus sees `num_train` pairings (50,000 by default) out of the 50,000 x 6,000 possible ones, and
each digit meets a new item of its class every epoch. Both images are binarised stochastically
as MNIST's are (fresh bits each epoch in training, bits fixed by the seed in evaluation).

Files: `data_dir` holds MNIST's four IDX files and `--data_options=fashion_dir=DIR`
Fashion-MNIST's (`apt-get install dataset-fashion-mnist` puts them in
/usr/share/datasets/fashion-mnist/); leave both out for TensorFlow Datasets. Bad or mismatched
files are one DataError line, as MNIST's.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from jmvae_tf.core import missing
from jmvae_tf.core.data import SPLITS, DataError, DataSet, check_options, digest
from jmvae_tf.core.likelihoods import BERNOULLI, CATEGORICAL
from jmvae_tf.core.modalities import IMAGE, Modality
from pipelines import captioning, captions, mnist

NUM_CLASSES = mnist.NUM_CLASSES
FASHION_CLASSES = (
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
)
# Separate the random streams drawn from one seed (as pipelines/mnist.py's do).
_TRAIN_PAIR_STREAM = 0xFA5_0001
_TRAIN_DIGIT_BITS_STREAM = 0xFA5_0002
_TRAIN_FASHION_BITS_STREAM = 0xFA5_0003
_EVAL_PAIR_STREAM = 0xFA5_0004
_EVAL_DIGIT_BITS_STREAM = 0xFA5_0005
_EVAL_FASHION_BITS_STREAM = 0xFA5_0006
# Each split's own pairing stream (the test split's, ord("t"), is what its numbers were
# measured with).
_SPLIT_STREAMS = {"train": ord("r"), "validation": ord("v"), "test": ord("t")}


def class_table(labels: np.ndarray) -> tuple:
  """(indices sorted by class [N], first position of each class [C], count of each [C]) of
  `labels`, so that the k-th image of class c is indices[starts[c] + k]."""
  labels = np.asarray(labels)
  order = np.argsort(labels, kind="stable").astype(np.int64)
  counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.int64)
  starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
  return order, starts, counts


def partners(labels: tf.Tensor, table, seed: tf.Tensor) -> tf.Tensor:
  """For each class in `labels` ([B] int), the index of a Fashion image of that class, drawn
  uniformly with the stateless `seed` ([2]) from `table` (class_table's)."""
  order, starts, counts = (tf.constant(t) for t in table)
  labels = tf.cast(labels, tf.int64)
  uniform = tf.random.stateless_uniform(tf.shape(labels), seed=seed, dtype=tf.float64)
  count = tf.gather(counts, labels)
  k = tf.minimum(tf.cast(uniform * tf.cast(count, tf.float64), tf.int64), count - 1)
  return tf.gather(order, tf.gather(starts, labels) + k)


class MnistFashionDataSet(captioning.Captioned, DataSet):
  """x1 = a MNIST digit, x2 = a Fashion-MNIST item of its class, w = the one-hot label; both
  images 28x28 binarised stochastically (see the module docstring)."""

  name = "mnist_fashion"
  architecture = "mnist_mlp"

  def __init__(
    self,
    data_dir=None,
    num_train: Optional[int] = None,
    validation: bool = False,
    **options: str,
  ):
    self.options = check_options(
      self.name, options, {"fashion_dir": (), **captioning.OPTIONS, missing.OPTION: ()}
    )
    caption_options, _ = captioning.take_options(self.name, options)
    if (data_dir is None) != ("fashion_dir" not in options):
      raise DataError(
        "mnist_fashion: give both --data_dir (MNIST's IDX files) and "
        "--data_options=fashion_dir=DIR (Fashion-MNIST's), or neither (TensorFlow Datasets)"
      )
    digits = mnist.load_arrays(data_dir, "mnist")
    fashion = mnist.load_arrays(options.get("fashion_dir"), "fashion_mnist")
    if data_dir is not None:  # the published files recognised; the swapped folders refused
      mnist.check_published(digits, "mnist", f"--data_dir={data_dir}")
      mnist.check_published(fashion, "fashion_mnist", f"fashion_dir={options['fashion_dir']}")
    if data_dir is not None and np.array_equal(digits.train_images, fashion.train_images):
      raise DataError(
        f"mnist_fashion: fashion_dir={options['fashion_dir']} holds the same images as "
        f"--data_dir={data_dir} (MNIST's?); it must be Fashion-MNIST's"
      )
    if num_train is None:
      num_train = min(mnist.PAPER_NUM_TRAIN, digits.train_images.shape[0] - int(validation))
    self.splits = mnist.split(digits, num_train, validation)
    self.fashion = {"train": fashion.train_images, "test": fashion.test_images}
    self.tables = {}
    for part, labels in (("train", fashion.train_labels), ("test", fashion.test_labels)):
      table = class_table(labels)
      empty = [FASHION_CLASSES[c] for c in range(NUM_CLASSES) if not table[2][c]]
      if empty:
        raise DataError(f"mnist_fashion: Fashion-MNIST's {part} images have no {empty[0]!r}")
      self.tables[part] = table
    self.captioner = None
    if caption_options is not None:  # "a seven beside a sneaker": the class, said of both
      grammar = captions.DIGIT_AND_FASHION
      self.captioner = captioning.Captioner(self.name, grammar, caption_options, grammar.corpus())
    self.take_missing(options)

  @property
  def modalities(self):
    return self.captioned(
      (
        Modality("digit", BERNOULLI, mnist.IMAGE_SIZE + (1,), IMAGE),
        Modality("fashion", BERNOULLI, mnist.IMAGE_SIZE + (1,), IMAGE),
        Modality("label", CATEGORICAL, (NUM_CLASSES,)),
      )
    )

  def _captioned(self, batch, classes, templates):
    """`batch` with its captions (without the label where they replace it)."""
    if self.captioner is None:
      return batch
    tokens = self.captioner.tokens(classes, templates)
    return captioning.with_caption(batch, self.captioner, tokens)

  def _part(self, split: str):
    return getattr(self.splits, split)

  def num_examples(self, split: str) -> int:
    part = self._part(split) if split in SPLITS else None
    return 0 if part is None else part.num_examples

  def _fashion_source(self, split: str) -> str:
    return "test" if split == "test" else "train"

  def train_dataset(self, batch_size: int, seed: int, start_epoch: int = 0) -> tf.data.Dataset:
    self.check_batch_size(batch_size)
    train = self.splits.train
    images = tf.constant(train.images)
    labels = tf.constant(train.labels.astype(np.int64))
    fashion = tf.constant(self.fashion["train"])
    table = self.tables["train"]
    num_examples = train.num_examples
    steps = self.steps_per_epoch(batch_size)
    seed = int(seed)
    captioner = self.captioner
    masks = missing.as_tensors(self.presence(seed))

    def make_batch(global_step):
      epoch, step = global_step // steps, global_step % steps
      epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
      positions = tf.range(step * batch_size, (step + 1) * batch_size)
      indices = tf.random.experimental.index_shuffle(
        positions, seed=epoch_seed, max_index=tf.constant(num_examples - 1, tf.int64)
      )

      def stream(code):
        return tf.random.experimental.stateless_fold_in(
          tf.random.experimental.stateless_fold_in(epoch_seed, code), step
        )

      label = tf.gather(labels, indices)
      partner = partners(label, table, stream(_TRAIN_PAIR_STREAM))
      digit = tf.cast(tf.gather(images, indices), tf.float32) / 255.0
      item = tf.cast(tf.gather(fashion, partner), tf.float32) / 255.0
      batch = {
        "digit": mnist.binarize(digit, stream(_TRAIN_DIGIT_BITS_STREAM))[..., tf.newaxis],
        "fashion": mnist.binarize(item, stream(_TRAIN_FASHION_BITS_STREAM))[..., tf.newaxis],
        "label": tf.one_hot(label, NUM_CLASSES),
      }
      if captioner is not None:
        templates = captioner.train_templates(batch_size, epoch_seed, step)
        batch = self._captioned(batch, label, templates)
      batch = {
        k: tf.ensure_shape(v, [batch_size] + v.shape[1:].as_list()) for k, v in batch.items()
      }
      return missing.gather(masks, batch, indices)

    return (
      tf.data.Dataset.counter(start=int(start_epoch) * steps, dtype=tf.int64)
      .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
      .prefetch(tf.data.AUTOTUNE)
    )

  def eval_pairs(self, split: str, seed: int = 0) -> np.ndarray:
    """The Fashion partner (an index into Fashion-MNIST's test images for the test split, its
    training images otherwise) of every example of `split`, fixed by `seed`."""
    part = self._part(split)
    source = self._fashion_source(split)
    pair_seed = tf.constant([int(seed), _EVAL_PAIR_STREAM + _SPLIT_STREAMS[split]], tf.int64)
    return partners(tf.constant(part.labels), self.tables[source], pair_seed).numpy()

  def eval_dataset(
    self, split: str, batch_size: int, seed: int = 0, num_examples: Optional[int] = None
  ) -> tf.data.Dataset:
    n = self.check_split(split, num_examples)
    if batch_size < 1:
      raise DataError(f"batch size must be at least 1, got {batch_size}")
    part = self._part(split)
    # The whole split paired and binarised at once, so an example's partner and bits depend
    # only on (seed, its index): every read and every batch size sees the same ones.
    item = self.fashion[self._fashion_source(split)][self.eval_pairs(split, seed)]
    digit_bits = mnist.binarize(
      tf.constant(part.images, tf.float32) / 255.0,
      tf.constant([int(seed), _EVAL_DIGIT_BITS_STREAM], tf.int64),
    )
    fashion_bits = mnist.binarize(
      tf.constant(item, tf.float32) / 255.0,
      tf.constant([int(seed), _EVAL_FASHION_BITS_STREAM], tf.int64),
    )
    data = {
      "digit": tf.cast(digit_bits[:n], tf.uint8),
      "fashion": tf.cast(fashion_bits[:n], tf.uint8),
      "label": tf.constant(part.labels[:n].astype(np.int64)),
    }
    if self.captioner is not None:  # templates fixed by (seed, the example's index)
      data["template"] = self.captioner.eval_templates(len(part.labels), seed)[:n]

    def to_model(batch):
      out = {
        "digit": tf.cast(batch["digit"], tf.float32)[..., tf.newaxis],
        "fashion": tf.cast(batch["fashion"], tf.float32)[..., tf.newaxis],
        "label": tf.one_hot(batch["label"], NUM_CLASSES),
      }
      return self._captioned(out, batch["label"], batch.get("template"))

    return (
      tf.data.Dataset.from_tensor_slices(data)
      .batch(batch_size)
      .map(to_model, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
      .prefetch(tf.data.AUTOTUNE)
    )

  def display_images(self, split: str, num_examples: int, seed: int = 0) -> np.ndarray:
    """Each example's digit and its Fashion partner (`seed`'s pairing) side by side."""
    n = self.check_split(split, num_examples)
    items = self.fashion[self._fashion_source(split)][self.eval_pairs(split, seed)[:n]]
    return np.concatenate([self._part(split).images[:n], items], axis=2)

  def metadata(self, split: str, num_examples: int) -> dict:
    classes = self.classes(split, num_examples)
    out = {"label": classes, "item": np.array([FASHION_CLASSES[c] for c in classes])}
    if self.captioner is not None:
      out[captioning.CAPTION] = self.captioner.held_out_texts(classes, self.num_examples(split))
    return out

  def classes(self, split: str, num_examples: int) -> np.ndarray:
    return self._part(split).labels[: self.check_split(split, num_examples)].astype(np.int64)

  def fingerprint(self, num_train: Optional[int] = None) -> str:
    # Fashion-MNIST's training labels decide the pairing (through its class table), so they
    # are part of the data.
    return digest(
      self.splits.train.images[:num_train],
      self.splits.train.labels[:num_train],
      self.fashion["train"],
      self.tables["train"][0],
    )
