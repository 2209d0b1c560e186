"""Coherence: does what a model generates show the class of what it was given?

For each set of given modalities and each modality generated from them (every subset ->
target pair), the share of test examples whose generated target is read as the example's
own class; with attributes instead of a class (CelebA's 40), the mean per-attribute accuracy.
Also the joint coherence of samples from the prior: the share of draws z ~ p(z) whose
generated modalities are all read as one class (attributes: the mean per-attribute agreement
of the generated image and attributes). This is how the multimodal-VAE literature (MultiVae's
`CoherenceEvaluator`, after Shi et al. 2019) compares models across data sets.

How a generated value is read (`readers`): an image by an independent classifier trained here
on the real training images of its modality (`train_classifier`, cached so evaluation does not
retrain it; its test accuracy is reported beside every coherence figure); a one-hot modality
by its argmax; a vector of {-1, 1} attributes by its sign; a caption by its most probable word
at each position up to the end of the sentence, read back by the data set's parser of its
grammar (`TextReader`; the parser's agreement with the true labels on the real test captions
is reported beside it). Generated values are the means of
p(target|z) for one draw of z from the posterior given the modalities (iterative sampling
first where the model needs it), as MultiVae's predictions are.

Everything goes through the models' inference API (`inference_subsets`, `posterior`,
`decode`, `sample_prior`, `describe_inference`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from jmvae_tf.core import files
from jmvae_tf.core.data import digest
from jmvae_tf.core.graphs import compiled
from jmvae_tf.core.modalities import IMAGE, VECTOR
from jmvae_tf.evaluation import table

CLASSIFIER_VERSION = 1  # bump when the classifier's network or training changes
CLASSIFIER_FILE = "classifier.json"


@dataclasses.dataclass
class Classifier:
  """A trained classifier of one image modality and what it was measured to do."""

  network: keras.Model  # images -> logits [B, C] (classes) or [B, A] (attributes)
  attributes: bool  # sigmoid outputs for {-1, 1} attributes, else softmax over classes
  test_accuracy: float  # on the real test images (attributes: mean per-attribute accuracy)
  num_train: int

  def read(self, images) -> np.ndarray:
    """Classes [B] (ints), or attributes [B, A] in {-1, 1}."""
    logits = self.network.predict(np.asarray(images, np.float32), batch_size=500, verbose=0)
    return np.where(logits > 0, 1, -1) if self.attributes else logits.argmax(-1)


def classifier_network(shape, outputs: int) -> keras.Model:
  """conv32-pool-conv64-pool-D128R-D(outputs): 0.98 test accuracy on MNIST's binarised digits
  and 0.84 on Fashion-MNIST's items after two epochs; small enough to train on a CPU at the
  first evaluation."""
  return keras.Sequential(
    [
      keras.layers.InputLayer(input_shape=tuple(shape)),
      keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
      keras.layers.MaxPooling2D(padding="same"),
      keras.layers.Conv2D(64, 3, activation="relu", padding="same"),
      keras.layers.MaxPooling2D(padding="same"),
      keras.layers.Flatten(),
      keras.layers.Dense(128, activation="relu"),
      keras.layers.Dense(outputs),
    ]
  )


def accuracy(read: np.ndarray, truth: np.ndarray) -> np.ndarray:
  """Per example: 1 where the class is right; the share of right attributes for attributes."""
  read, truth = np.asarray(read), np.asarray(truth)
  right = read == truth
  return right.mean(-1) if right.ndim > 1 else right.astype(np.float64)


def train_classifier(
  shape,
  outputs: int,
  attributes: bool,
  train: tf.data.Dataset,
  test: tf.data.Dataset,
  epochs: int = 2,
  seed: int = 0,
  num_train: int = 0,
) -> Classifier:
  """A classifier of images of `shape` trained on the batches of (images, labels) of
  `train` (classes: ints; attributes: {-1, 1}; `num_train` examples, as recorded) and
  measured on those of `test`."""
  keras.utils.set_random_seed(seed)
  network = classifier_network(shape, outputs)
  if attributes:
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    train = train.map(lambda x, y: (x, tf.cast(y > 0, tf.float32)))
  else:
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  network.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
  network.fit(train, epochs=epochs, verbose=0)
  classifier = Classifier(network, attributes, 0.0, 0)
  scores = [accuracy(classifier.read(x), y.numpy()) for x, y in test]
  classifier.test_accuracy = float(np.concatenate(scores).mean())
  classifier.num_train = int(num_train)
  return classifier


def _read_entry(path: str, shape, outputs: int) -> Classifier:
  """The classifier kept in `path`; a ValueError saying what is wrong with the entry."""
  try:
    with open(os.path.join(path, CLASSIFIER_FILE)) as f:
      record = json.load(f)
  except (OSError, ValueError) as error:
    raise ValueError(f"{CLASSIFIER_FILE}: {files.first_line(error, 120)}") from None
  types = {"attributes": bool, "test_accuracy": (int, float), "num_train": int}
  if not isinstance(record, dict) or any(
    not isinstance(record.get(k), t) or (t is int and isinstance(record.get(k), bool))
    for k, t in types.items()
  ):
    raise ValueError(f"{CLASSIFIER_FILE} holds {str(record)[:80]!r}, not {sorted(types)}")
  network = classifier_network(shape, outputs)
  try:
    status = tf.train.Checkpoint(network=network).read(os.path.join(path, "ckpt-1"))
    status.expect_partial().assert_existing_objects_matched()  # the optimizer may be there too
  except (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError) as error:
    raise ValueError(f"its checkpoint: {files.first_line(error, 120)}") from None
  return Classifier(
    network, record["attributes"], float(record["test_accuracy"]), record["num_train"]
  )


@contextlib.contextmanager
def _entry_lock(path: Optional[str]):
  """Held while one process trains or reads the entry `path`: a second evaluation on an empty
  cache waits for the first's classifier instead of training its own. Where the lock cannot
  be taken (no cache, a read-only one), no lock."""
  if not path:
    yield
    return
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle = open(f"{path}.lock", "a")  # pylint: disable=consider-using-with
  except OSError:
    yield
    return
  with handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


def cached_classifier(
  directory, key: str, train: Callable[[], Classifier], shape, outputs: int
) -> Classifier:
  """The classifier kept under directory/key, else train() kept there (whole: written aside,
  then renamed); `directory` None: trained, not kept. A damaged entry is a warning naming it,
  then retrained and replaced; a cache that cannot be written (read-only, full) a warning,
  the classifier used all the same. Two evaluations at once train it once: the second waits
  for the first's."""
  path = os.path.join(str(directory), key) if directory else None
  with _entry_lock(path):
    if path and os.path.isdir(path):
      try:
        return _read_entry(path, shape, outputs)
      except ValueError as error:
        print(
          f"warning: the cached classifier {path} is damaged ({error}); training it again",
          flush=True,
        )
    classifier = train()
    if path:
      _keep(classifier, path, directory)
  return classifier


def _keep(classifier: Classifier, path: str, directory) -> None:
  """Writes the entry aside and renames it into place (replacing a damaged one); any failure
  (a read-only or full disk) is a warning and leaves nothing behind."""
  temp = f"{path}.tmp{os.getpid()}"
  try:
    os.makedirs(temp, exist_ok=True)  # its parent too
    tf.train.Checkpoint(network=classifier.network).write(os.path.join(temp, "ckpt-1"))
    record = {
      "attributes": classifier.attributes,
      "test_accuracy": classifier.test_accuracy,
      "num_train": classifier.num_train,
    }
    with open(os.path.join(temp, CLASSIFIER_FILE), "w") as f:
      json.dump(record, f)
    if os.path.isdir(path):  # a damaged entry, read and found wanting above
      shutil.rmtree(path)
    os.replace(temp, path)
  except (OSError, tf.errors.OpError) as error:  # kept or not, the classifier is the same
    shutil.rmtree(temp, ignore_errors=True)
    full = "the disk is full: " if files.disk_full(error) else ""
    print(
      f"warning: could not keep the classifier in {directory} ({full}"
      f"{files.first_line(error, 120)}); it is used all the same and trained again next time",
      flush=True,
    )


def image_classifiers(data, epochs: int = 2, data_seed: int = 0) -> Dict[str, Classifier]:
  """{image modality: its Classifier} for a data set (a jmvae_tf.core.data.DataSet) whose
  examples have classes or attributes (`labels`), trained on its real training images (as
  evaluation sees them: MNIST's binarised with the bits of `data_seed`) and measured on its
  test images; each kept in files.cache_dir("classifiers") under the data's fingerprint, so
  evaluation trains it once. {} for a data set without labels."""
  if data.labels("test", 1) is None:
    return {}
  return {
    m.name: _image_classifier(data, m, epochs, data_seed)
    for m in data.modalities
    if m.family == IMAGE
  }


def _image_classifier(data, modality, epochs: int, data_seed: int, batch_size: int = 128):
  # Training examples that lack the image or what it is (a user's empty cells kept with
  # missing=keep) teach the classifier nothing true: only those holding both train it.
  held = data.real_presence()
  keep = None
  if held is not None:
    needed = [modality.name] + [n for n in (data.label_modalities() or ()) if n in held]
    keep = np.logical_and.reduce([np.asarray(held[n], bool) for n in needed])

  def split(name):
    n = data.num_examples(name)
    labels = data.labels(name, n)
    images = data.eval_dataset(name, batch_size, data_seed).map(lambda b: b[modality.name])
    if name != "train" or keep is None:
      return tf.data.Dataset.zip(
        (images, tf.data.Dataset.from_tensor_slices(labels).batch(batch_size))
      )
    rows = tf.data.Dataset.zip(
      (images.unbatch(), tf.data.Dataset.from_tensor_slices((labels, keep)))
    )
    rows = rows.filter(lambda image, label_keep: label_keep[1])
    return rows.map(lambda image, label_keep: (image, label_keep[0])).batch(batch_size)

  train_labels = data.labels("train", data.num_examples("train"))
  if keep is not None:
    train_labels = train_labels[keep]
  attributes = train_labels.ndim > 1
  outputs = train_labels.shape[1] if attributes else int(train_labels.max()) + 1
  read = data.label_modalities() or ()
  for m in data.modalities:  # a class list may hold classes the training split lacks
    if m.name in read and m.likelihood.classes(m.shape) is not None and not attributes:
      outputs = max(outputs, m.shape[0])
  about = f"{data.fingerprint()} {modality.name} {data_seed} {epochs} v{CLASSIFIER_VERSION}"
  if keep is not None:
    about += f" held {digest(keep)}"
  key = f"{data.name}-{modality.name}-" + digest(np.frombuffer(about.encode(), np.uint8))
  directory = files.cache_dir("classifiers")
  num_train = len(train_labels)

  def train():
    print(
      f"coherence: training a classifier of {modality.name} on {num_train} real training "
      f"images ({epochs} epochs), once: "
      + (f"it is kept in {directory}" if directory else "the cache is off")
      + " (runners.evaluate --nocoherence, or evaluate(with_coherence=False), skips it)",
      flush=True,
    )
    return train_classifier(
      modality.shape, outputs, attributes, split("train"), split("test"), epochs, 0, num_train
    )

  return cached_classifier(directory, key, train, modality.shape, outputs)


@dataclasses.dataclass
class TextReader:
  """Reads generated captions of a text modality: the most probable token of each position up
  to the end of the sentence (`Vocabulary.decode`), then the data set's parser (`read_text`),
  which gives classes (-1: none stated) or attributes."""

  vocabulary: object  # jmvae_tf.core.text.Vocabulary
  parse: Callable  # captions -> classes [N] or attributes [N, A]
  agreement: float  # the parser on the real test captions, against their true labels
  num_test: int

  def read(self, values) -> np.ndarray:
    return np.asarray(self.parse(self.vocabulary.decode_numpy(values)))


def text_readers(data, data_seed: int = 0, batch_size: int = 500) -> Dict[str, TextReader]:
  """{text modality: its TextReader} for a data set with labels whose captions it can read
  (`DataSet.read_text`), each with the parser's agreement with the true labels on the real
  test captions (as evaluation reads them: `data_seed`'s)."""
  if data.labels("test", 1) is None:
    return {}
  out = {}
  for m in data.modalities:
    vocabulary = m.text
    if vocabulary is None:
      continue
    n = data.num_examples("test")
    texts = []
    for batch in data.eval_dataset("test", batch_size, data_seed):
      texts += vocabulary.decode_numpy(batch[m.name])
    read = data.read_text(m.name, texts)
    if read is None:
      continue
    truth = data.labels("test", n)
    agreement = float(accuracy(read, truth).mean())
    out[m.name] = TextReader(
      vocabulary, lambda t, name=m.name: data.read_text(name, t), agreement, n
    )
  return out


def data_readers(data, epochs: int = 2, data_seed: int = 0) -> Dict[str, object]:
  """What coherence reads a data set's generated modalities with, beyond argmax and sign:
  its images' classifiers (`image_classifiers`) and its captions' parsers (`text_readers`)."""
  return {**image_classifiers(data, epochs, data_seed), **text_readers(data, data_seed)}


def make_reader(
  modality, classifiers: Dict[str, Classifier], readable: Optional[Sequence[str]] = None
) -> Optional[Callable]:
  """How a value of `modality` is read: its classifier (an image), its argmax (a class),
  which side of the middle of its range each value lies on (attributes: {-1, 1}, or {0, 1}
  for Bernoulli ones); None where nothing reads it. `readable`: the vector modalities that
  state the labels (a data set's `label_modalities`; None: every vector modality)."""
  if modality.name in classifiers:
    return classifiers[modality.name].read
  if readable is not None and modality.name not in readable:
    return None
  if modality.likelihood.classes(modality.shape) is not None:
    return lambda values: np.asarray(values).argmax(-1)
  if modality.family == VECTOR and modality.likelihood.reads_as_attributes:
    low, high = modality.likelihood.value_range or (-1.0, 1.0)
    middle = (low + high) / 2
    return lambda values: np.where(np.asarray(values) > middle, 1, -1)
  return None


def pairs(model, readers: Dict[str, Callable]):
  """Every (given subset, target) with a reader for the target: each generated modality
  from each set of the others the model can infer z from, smallest sets first."""
  out = []
  for target in model.generated_modalities:
    if target in readers:
      out += [(given, target) for given in model.inference_subsets() if target not in given]
  return out


def pair_key(given: Sequence[str], target: str) -> str:
  return f"{target}|{','.join(sorted(given))}"


def coherence(
  model,
  dataset: tf.data.Dataset,
  truth: np.ndarray,
  readers: Dict[str, Callable],
  iterations: int = 100,
  seed: int = 0,
) -> Dict[str, float]:
  """{"target|given": coherence} over the examples of `dataset` (in order), whose classes
  (or attributes) are `truth`. Batch i of pair j draws from the stateless seed
  (seed * 1000 + 700 + j, i)."""
  truth = np.asarray(truth)
  found = pairs(model, readers)
  scores = {pair_key(g, t): [] for g, t in found}
  count = 0
  for i, batch in enumerate(dataset):
    n = int(tf.shape(next(iter(batch.values())))[0])
    for j, (given, target) in enumerate(found):
      generated = compiled(table.generated_mean, target, given)(
        model,
        {name: batch[name] for name in given},
        target,
        given,
        tf.constant(iterations, tf.int64),
        tf.constant([seed * 1000 + 700 + j, i], tf.int64),
      )
      scores[pair_key(given, target)].append(
        accuracy(readers[target](generated.numpy()), truth[count : count + n])
      )
    count += n
  if count != len(truth):
    raise ValueError(f"coherence: {count} examples but {len(truth)} classes")
  return {key: float(np.concatenate(values).mean()) for key, values in scores.items()}


def prior_coherence(
  model, readers: Dict[str, Callable], num_samples: int = 1000, seed: int = 0
) -> Optional[float]:
  """The joint coherence of z ~ p(z): the share of draws whose generated modalities are all
  read as one class (attributes: the mean agreement of each pair's attributes); None for a
  model without a prior of its own (CVAE/CMMA) or fewer than two read modalities."""
  names = [n for n in model.generated_modalities if n in readers]
  if model.conditioning_modalities or len(names) < 2:
    return None
  z_seed = tf.constant([seed, 0x70_1207], tf.int64)
  z = model.sample_prior(num_samples, z_seed)
  dists = model.decode(z, {}, names=names)
  read = [np.asarray(readers[n](dists[n].mean().numpy())) for n in names]
  if read[0].ndim > 1:  # attributes: how far every pair agrees
    agree = [accuracy(a, b) for k, a in enumerate(read) for b in read[k + 1 :]]
    return float(np.mean(agree))
  return float(np.mean(np.all([r == read[0] for r in read[1:]], axis=0)))


def evaluate(
  model,
  dataset: tf.data.Dataset,
  truth: np.ndarray,
  classifiers: Dict[str, Classifier],
  iterations: int = 100,
  prior_samples: int = 1000,
  seed: int = 0,
  readable: Optional[Sequence[str]] = None,
) -> Dict:
  """The record of a model's coherence: every pair's, the prior's, how each modality is read
  (and each classifier's test accuracy) and how z is drawn from each set of modalities.
  `readable`: as for make_reader."""
  readers = {}
  for m in model.modality_specs:
    reader = make_reader(m, classifiers, readable)
    if reader is not None:
      readers[m.name] = reader
  found = pairs(model, readers)
  record = {
    "pairs": coherence(model, dataset, truth, readers, iterations, seed),
    "prior": prior_coherence(model, readers, prior_samples, seed) if prior_samples else None,
    "prior_samples": prior_samples,
    "read_by": {m.name: read_by(m, classifiers) for m in model.modality_specs if m.name in readers},
    "inference": {pair_key(g, t): model.describe_inference(g, iterations) for g, t in found},
    "num_examples": int(len(truth)),
  }
  if np.ndim(truth) > 1:  # attributes: what always saying each one's commoner value scores
    record["majority"] = majority_baseline(truth)
  return record


def majority_baseline(truth: np.ndarray) -> float:
  """The mean per-attribute accuracy of always predicting each attribute's more frequent value
  among `truth` ({-1, 1} [N, A]): the floor an attribute coherence must clear."""
  positive = (np.asarray(truth) > 0).mean(0)
  return float(np.maximum(positive, 1 - positive).mean())


def read_by(modality, classifiers: Dict[str, Classifier]) -> str:
  """How values of `modality` are read, for reports."""
  if isinstance(classifiers.get(modality.name), TextReader):
    r = classifiers[modality.name]
    return (
      "its most probable word at each position up to <eos>, parsed by the data set's grammar "
      f"(the parser's agreement with the true labels on the {r.num_test} real test captions: "
      f"{r.agreement:.4f})"
    )
  if modality.name in classifiers:
    c = classifiers[modality.name]
    what = "attributes" if c.attributes else "classes"
    return (
      f"a classifier of {what} trained on {c.num_train} real training images "
      f"(test accuracy {c.test_accuracy:.4f})"
    )
  if modality.likelihood.classes(modality.shape) is not None:
    return "its argmax"
  low, high = modality.likelihood.value_range or (-1.0, 1.0)
  return "its sign" if low + high == 0 else f"each value above {(low + high) / 2:g} or not"


def markdown(records: Sequence[Dict], titles: Sequence[str]) -> str:
  """Coherence of each record (a model's `evaluate`), one column per model, one row per
  (target | given) pair, the prior's last; then how each modality was read."""
  keys = list(dict.fromkeys(k for r in records for k in r["pairs"]))
  lines = [
    "| coherence of | given | " + " | ".join(titles) + " |",
    "|---" * (2 + len(records)) + "|",
  ]
  for key in keys:
    target, given = key.split("|")
    cells = [f"{r['pairs'][key]:.4f}" if key in r["pairs"] else "—" for r in records]
    lines.append(f"| {target} | {given.replace(',', ', ')} | " + " | ".join(cells) + " |")
  if any("majority" in r for r in records):
    cells = [f"{r['majority']:.4f}" if "majority" in r else "—" for r in records]
    lines.append(
      "| majority baseline | each attribute's commoner test value, always | "
      + " | ".join(cells)
      + " |"
    )
  if any(r["prior"] is not None for r in records):
    cells = [f"{r['prior']:.4f}" if r["prior"] is not None else "—" for r in records]
    samples = next(r["prior_samples"] for r in records if r["prior"] is not None)
    lines.append(f"| all, jointly | z ~ p(z), {samples} draws | " + " | ".join(cells) + " |")
  read = {name: how for r in records for name, how in r["read_by"].items()}
  notes = "; ".join(f"{name}: {how}" for name, how in read.items())
  n = records[0]["num_examples"]
  return (
    "\n".join(lines)
    + f"\n\nCoherence: the share of {n} test examples whose generated modality (the mean of "
    "p(target|z), one draw of z given the others) is read as the example's own class (for "
    f"attributes: the mean per-attribute accuracy). Read by: {notes}."
  )
