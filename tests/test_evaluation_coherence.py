"""jmvae_tf/evaluation/coherence.py against hand computations: a model whose answers are known
(it generates the class it is given, or a shifted one), readers that read a class off a
picture by rule, and a classifier trained and cached on pictures whose classes are known."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from jmvae_tf.core import files
from jmvae_tf.core.modalities import Modality
from jmvae_tf.evaluation import coherence
from jmvae_tf.models.base import MultimodalVAE

tfd = tfp.distributions
CLASSES = 4
PIC = Modality("pic", "bernoulli", (2, CLASSES, 1), "image")
LABEL = Modality("label", "categorical", (CLASSES,))
WORD = Modality("word", "categorical", (CLASSES,))


def picture_of(classes) -> np.ndarray:
  """A 2x4 picture whose first row lights the class's column: what `read_picture` reads."""
  pictures = np.zeros((len(classes), 2, CLASSES, 1), np.float32)
  pictures[np.arange(len(classes)), 0, classes, 0] = 1.0
  return pictures


def read_picture(values) -> np.ndarray:
  return np.asarray(values)[:, 0, :, 0].argmax(-1)


class KnownModel:
  """The inference API of a model that knows the class: z is the one-hot class read off any
  given modality (the first given, in order), its variance ~0; each decoder writes z's class
  plus its `shift` (mod CLASSES) into its modality."""

  def __init__(self, modalities, shifts):
    self.modality_specs = tuple(modalities)
    self.modality_names = tuple(m.name for m in modalities)
    self.generated_modalities = self.modality_names
    self.conditioning_modalities = ()
    self.shifts = shifts

  def inference_subsets(self):
    names = self.modality_names
    return [(n,) for n in names] + [tuple(sorted(names))]

  def uses_iterative_sampling(self, given):
    return False

  # The real composition of posterior, a draw of z and decode, on this model's own parts.
  generated_mean = MultimodalVAE.generated_mean

  def describe_inference(self, given, steps):
    return f"z = the class of {given[0]}"

  def posterior(self, batch, given, seed=(0, 0), num_steps=0):
    first = sorted(given, key=self.modality_names.index)[0]
    value = batch[first]
    classes = tf.argmax(value[:, 0, :, 0] if first == "pic" else value, -1)
    z = tf.one_hot(classes, CLASSES)
    return z, tf.fill(tf.shape(z), 1e-12)

  def _decoded(self, name, z):
    classes = (tf.argmax(z, -1) + self.shifts.get(name, 0)) % CLASSES
    if name == "pic":
      rows = tf.one_hot(classes, CLASSES)
      picture = tf.stack([rows, tf.zeros_like(rows)], axis=1)[..., tf.newaxis]
      return tfd.Independent(tfd.Bernoulli(probs=picture), 3)
    return tfd.OneHotCategorical(probs=tf.one_hot(classes, CLASSES))

  def decode(self, z, batch=None, names=None):
    return {n: self._decoded(n, z) for n in names or self.generated_modalities}

  def sample_prior(self, n, seed):
    return tf.one_hot(tf.range(n) % CLASSES, CLASSES)


def readers_of(model):
  return {
    m.name: coherence.make_reader(m, {"pic": coherence_classifier()}) for m in model.modality_specs
  }


def coherence_classifier():
  """A stand-in Classifier whose `read` is the rule (its network is never called)."""
  return coherence.Classifier(network=None, attributes=False, test_accuracy=1.0, num_train=0)


def dataset_of(pictures, labels, batch_size=3):
  data = {"pic": pictures, "label": np.eye(CLASSES, dtype=np.float32)[labels]}
  return tf.data.Dataset.from_tensor_slices(data).batch(batch_size)


def test_coherence_is_the_share_read_as_each_examples_class(monkeypatch):
  """Ten examples, three of whose pictures show another class than their label: from the
  label the model draws the right picture for all ten (1.0); from the picture it reads the
  label of what it saw, right for 7 of 10 (0.7); with a decoder that writes the next class,
  0 where that decoder's modality is the target."""
  monkeypatch.setattr(coherence.Classifier, "read", lambda self, values: read_picture(values))
  labels = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
  shown = labels.copy()
  shown[[1, 4, 8]] = [3, 2, 1]  # three pictures of another class
  model = KnownModel((PIC, LABEL), {})
  readers = readers_of(model)
  got = coherence.coherence(model, dataset_of(picture_of(shown), labels), labels, readers)
  assert got == {"pic|label": 1.0, "label|pic": 0.7}
  shifted = KnownModel((PIC, LABEL), {"pic": 1})
  got = coherence.coherence(shifted, dataset_of(picture_of(shown), labels), labels, readers)
  assert got == {"pic|label": 0.0, "label|pic": 0.7}
  with pytest.raises(ValueError, match="11 classes"):
    coherence.coherence(model, dataset_of(picture_of(shown), labels), np.append(labels, 0), readers)


def test_three_modalities_give_a_pair_for_each_target_and_set_of_the_others(monkeypatch):
  monkeypatch.setattr(coherence.Classifier, "read", lambda self, values: read_picture(values))

  class Three(KnownModel):
    def inference_subsets(self):
      names = ("label", "pic", "word")
      singles = [(n,) for n in names]
      return singles + [("label", "pic"), ("label", "word"), ("pic", "word"), names]

  model = Three((PIC, LABEL, WORD), {"word": 2})
  found = coherence.pairs(model, readers_of(model))
  assert len(found) == 9
  assert sorted(coherence.pair_key(g, t) for g, t in found) == sorted(
    f"{t}|{','.join(g)}"
    for t in ("pic", "label", "word")
    for g in model.inference_subsets()
    if t not in g and len(g) < 3
  )


def test_prior_coherence_is_the_share_of_draws_all_read_alike(monkeypatch):
  monkeypatch.setattr(coherence.Classifier, "read", lambda self, values: read_picture(values))
  agreeing = KnownModel((PIC, LABEL), {})
  assert coherence.prior_coherence(agreeing, readers_of(agreeing), num_samples=8) == 1.0
  apart = KnownModel((PIC, LABEL), {"label": 1})
  assert coherence.prior_coherence(apart, readers_of(apart), num_samples=8) == 0.0


def test_attributes_are_scored_by_the_mean_per_attribute_accuracy():
  read = np.array([[1, 1, -1, -1], [1, -1, 1, -1]])
  truth = np.array([[1, -1, -1, -1], [1, -1, 1, -1]])
  np.testing.assert_allclose(coherence.accuracy(read, truth), [0.75, 1.0])
  reader = coherence.make_reader(Modality("attributes", "gaussian_fixed", (4,), "vector"), {})
  np.testing.assert_array_equal(reader(np.array([[0.3, -0.2, 0.0, 2.0]])), [[1, -1, -1, 1]])


def test_a_classifier_is_trained_once_and_read_back_from_the_cache(tmp_path, monkeypatch):
  """Pictures whose class is where they are lit: trained to near-perfect test accuracy, kept
  in the cache; a second call reads it back (no training) and reads the same classes."""
  monkeypatch.setenv(files.CACHE_ENV, str(tmp_path))
  rng = np.random.default_rng(0)

  def split(n):
    labels = rng.integers(0, CLASSES, n)
    pictures = picture_of(labels) * 0.8 + rng.random((n, 2, CLASSES, 1)).astype(np.float32) * 0.2
    return tf.data.Dataset.from_tensor_slices((pictures, labels)).batch(32), pictures, labels

  train, _, _ = split(600)
  test, test_pictures, test_labels = split(100)
  trained = []

  def fit():
    trained.append(1)
    return coherence.train_classifier(
      PIC.shape, CLASSES, False, train, test, epochs=3, num_train=600
    )

  first = coherence.cached_classifier(
    files.cache_dir("classifiers"), "toy", fit, PIC.shape, CLASSES
  )
  assert first.test_accuracy > 0.95 and first.num_train == 600
  again = coherence.cached_classifier(
    files.cache_dir("classifiers"), "toy", fit, PIC.shape, CLASSES
  )
  assert len(trained) == 1 and again.test_accuracy == first.test_accuracy
  np.testing.assert_array_equal(again.read(test_pictures), first.read(test_pictures))
  assert (first.read(test_pictures) == test_labels).mean() == pytest.approx(first.test_accuracy)


# --- the classifier cache fails softly (issue 30) ------------------------------------------


def tiny_classifier(num_train: int = 8) -> coherence.Classifier:
  """An untrained classifier of PIC's pictures: what the cache keeps, made in no time."""
  return coherence.Classifier(
    coherence.classifier_network(PIC.shape, CLASSES), False, 0.5, num_train
  )


def cache_entry(tmp_path, trained, key="toy"):
  """cached_classifier on tmp_path/key, counting the trainings in `trained`."""

  def fit():
    trained.append(1)
    return tiny_classifier(len(trained))

  return coherence.cached_classifier(tmp_path, key, fit, PIC.shape, CLASSES)


@pytest.mark.parametrize(
  "damage, said",
  [
    (
      lambda p: (p / "classifier.json").write_text('{"attributes": false, "test_acc'),
      "classifier.json",
    ),
    (lambda p: (p / "classifier.json").write_text(""), "classifier.json"),
    (
      lambda p: (p / "classifier.json").write_text(
        '{"attributes": false, "test_accuracy": "0.9", "num_train": 8}'
      ),
      "classifier.json holds",
    ),
    (lambda p: next(p.glob("ckpt-1.data*")).write_bytes(b"\0" * 10), "its checkpoint"),
    (lambda p: (p / "ckpt-1.index").unlink(), "its checkpoint"),
  ],
  ids=["truncated_json", "empty_json", "wrong_type", "truncated_data", "missing_index"],
)
def test_a_damaged_entry_is_a_warning_then_retrained_and_replaced(tmp_path, capsys, damage, said):
  """Each damage: one warning naming the entry and what is wrong, the classifier trained
  again, the entry replaced (read back the next time without training)."""
  trained = []
  cache_entry(tmp_path, trained)
  damage(tmp_path / "toy")
  capsys.readouterr()
  again = cache_entry(tmp_path, trained)
  out = capsys.readouterr().out
  assert len(trained) == 2 and again.num_train == 2
  assert f"the cached classifier {tmp_path / 'toy'} is damaged" in out and said in out
  assert len(out.strip().splitlines()) == 1
  third = cache_entry(tmp_path, trained)
  assert len(trained) == 2 and third.num_train == 2 and capsys.readouterr().out == ""


def test_a_full_disk_is_a_warning_and_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
  """The checkpoint write raising TensorFlow's out-of-space error: a warning that says the disk
  is full, the classifier returned, no temporary folder left in the cache."""

  def full(self, *args, **kwargs):
    raise tf.errors.ResourceExhaustedError(None, None, "ckpt-1.data; No space left on device")

  monkeypatch.setattr(tf.train.Checkpoint, "write", full)
  classifier = cache_entry(tmp_path, [])
  out = capsys.readouterr().out
  assert classifier.num_train == 1 and "the disk is full" in out and "used all the same" in out
  assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == []


def test_two_evaluations_at_once_train_one_classifier(tmp_path, capsys):
  """Two processes on an empty cache: one trains while the other waits and reads its
  classifier; no "could not keep" warning."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  script = f"""
import sys, time
sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
from test_evaluation_coherence import tiny_classifier, PIC, CLASSES
from jmvae_tf.evaluation import coherence
def fit():
  print("trained", flush=True)
  time.sleep(3)
  return tiny_classifier()
coherence.cached_classifier({str(tmp_path)!r}, "toy", fit, PIC.shape, CLASSES)
print("done", flush=True)
"""
  env = {**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  procs = [
    subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    for _ in range(2)
  ]
  outs = [p.communicate(timeout=300)[0] for p in procs]
  assert all(p.returncode == 0 for p in procs), outs
  joined = "".join(outs)
  assert joined.count("trained") == 1 and joined.count("done") == 2, outs
  assert "could not keep" not in joined


def test_a_token_sequence_is_not_read_as_attributes():
  """A tokens modality (a caption) says its class only to a parser; coherence leaves it
  unread rather than comparing signs of one-hot rows with classes."""
  caption = Modality("caption", "tokens", (4, 6))
  assert coherence.make_reader(caption, {}) is None
  assert coherence.make_reader(Modality("attributes", "bernoulli", (3,), "vector"), {}) is not None


# --- captions read by the data set's parser; the attributes' majority baseline ----------------


@pytest.fixture(scope="module")
def mnist_dir_of_fakes(tmp_path_factory):
  """60 random training and 20 test digits (fake IDX files)."""
  from tiny_runs import write_fake_mnist

  return write_fake_mnist(tmp_path_factory.mktemp("mnist"), num_train=60, num_test=20)


@pytest.fixture(scope="module")
def captioned(mnist_dir_of_fakes):
  """The fake MNIST with a caption added."""
  from pipelines.mnist import MnistDataSet

  return MnistDataSet(mnist_dir_of_fakes, captions="added")


def test_text_readers_read_the_test_captions_back_to_their_labels(captioned):
  readers = coherence.text_readers(captioned)
  assert list(readers) == ["caption"]
  reader = readers["caption"]
  assert isinstance(reader, coherence.TextReader)
  assert reader.agreement == 1.0 and reader.num_test == 20
  assert reader.vocabulary == captioned.modalities[-1].text
  values = np.concatenate([b["caption"] for b in captioned.eval_dataset("test", 8, seed=0)])
  np.testing.assert_array_equal(reader.read(values), captioned.classes("test", 20))
  # probabilities are read by their most probable token
  rng = np.random.default_rng(0)
  noisy = values + 0.3 * rng.random(values.shape) * (values.sum(-1, keepdims=True) > 0)
  np.testing.assert_array_equal(reader.read(noisy), captioned.classes("test", 20))
  # a caption no template makes is read as no class
  wrong = values.copy()
  wrong[:, 0] = 0.0  # the first word gone: nothing is read
  assert np.all(reader.read(wrong) == -1)
  assert coherence.text_readers(captioned, data_seed=3)["caption"].agreement == 1.0
  assert "agreement with the true labels on the 20 real test captions: 1.0000" in (
    coherence.read_by(captioned.modalities[-1], readers)
  )


def test_only_a_data_set_that_reads_its_captions_has_text_readers(
  mnist_dir_of_fakes, captioned, monkeypatch
):
  import jmvae_tf
  from pipelines.mnist import MnistDataSet

  plain = MnistDataSet(mnist_dir_of_fakes)
  assert coherence.text_readers(plain) == {}
  caption = captioned.modalities[-1]
  values = next(iter(captioned.eval_dataset("test", 20)))
  split = {"caption": values["caption"].numpy(), "label": values["label"].numpy()}
  arrays = jmvae_tf.ArrayDataSet(
    [caption, Modality("label", "categorical", (10,))], split, test=split
  )
  assert coherence.text_readers(arrays) == {}  # it has no parser of its captions
  monkeypatch.setattr(coherence, "image_classifiers", lambda data, epochs, seed: {"image": "net"})
  readers = coherence.data_readers(captioned)
  assert readers["image"] == "net" and isinstance(readers["caption"], coherence.TextReader)


class CaptionModel:
  """Given a one-hot class, z is it; the caption's decoder writes the caption of the class plus
  `shift` under the grammar's first template (its mean is those tokens)."""

  def __init__(self, data, shift=0):
    self.modality_specs = tuple(data.modalities)
    self.modality_names = tuple(m.name for m in data.modalities)
    self.generated_modalities = ("caption",)
    self.conditioning_modalities = ()
    self.shift = shift
    self.table = data.captioner.tokens(tf.range(10), tf.zeros([10], tf.int32))

  def inference_subsets(self):
    return [("label",)]

  def uses_iterative_sampling(self, given):
    return False

  generated_mean = MultimodalVAE.generated_mean

  def describe_inference(self, given, steps):
    return "z = the label"

  def posterior(self, batch, given, seed=(0, 0), num_steps=0):
    z = tf.cast(batch["label"], tf.float32)
    return z, tf.fill(tf.shape(z), 1e-12)

  def decode(self, z, batch=None, names=None):
    classes = (tf.argmax(z, -1, output_type=tf.int32) + self.shift) % 10
    return {"caption": tfd.Independent(tfd.Deterministic(tf.gather(self.table, classes)), 2)}


def test_coherence_reads_generated_captions_with_the_parser(captioned):
  readers = coherence.text_readers(captioned)
  truth = captioned.labels("test", 20)
  dataset = captioned.eval_dataset("test", 8)
  record = coherence.evaluate(
    CaptionModel(captioned), dataset, truth, readers, iterations=0, prior_samples=0
  )
  assert record["pairs"] == {"caption|label": 1.0} and record["prior"] is None
  assert "majority" not in record  # classes: no attribute baseline
  shifted = coherence.evaluate(
    CaptionModel(captioned, shift=1), dataset, truth, readers, iterations=0, prior_samples=0
  )
  assert shifted["pairs"] == {"caption|label": 0.0}
  text = coherence.markdown([record, shifted], ["right", "shifted"])
  assert "| caption | label | 1.0000 | 0.0000 |" in text
  assert "majority baseline" not in text
  assert "caption: its most probable word at each position up to <eos>, parsed by" in text


def test_the_majority_baseline_is_the_commoner_value_of_each_attribute():
  truth = np.array([[1, -1, 1], [1, 1, 1], [-1, -1, 1], [1, -1, -1]])
  # attribute 0: 3 of 4 positive; 1: 1 of 4 (3 of 4 negative); 2: 3 of 4
  assert coherence.majority_baseline(truth) == pytest.approx(0.75)
  truth = np.array([[1, 1, -1], [-1, 1, -1]])
  assert coherence.majority_baseline(truth) == pytest.approx((0.5 + 1 + 1) / 3)
  assert coherence.majority_baseline(np.ones([5, 40])) == 1.0


ATTRIBUTES_A = Modality("a", "gaussian_fixed", (3,), "vector")
ATTRIBUTES_B = Modality("b", "gaussian_fixed", (3,), "vector")


class MirrorModel:
  """Two attribute modalities; z is the given one's values, each decoder writes z."""

  modality_specs = (ATTRIBUTES_A, ATTRIBUTES_B)
  modality_names = ("a", "b")
  generated_modalities = ("a", "b")
  conditioning_modalities = ()

  def inference_subsets(self):
    return [("a",), ("b",), ("a", "b")]

  def uses_iterative_sampling(self, given):
    return False

  generated_mean = MultimodalVAE.generated_mean

  def describe_inference(self, given, steps):
    return f"z = {given[0]}"

  def posterior(self, batch, given, seed=(0, 0), num_steps=0):
    z = tf.cast(batch[sorted(given)[0]], tf.float32)
    return z, tf.fill(tf.shape(z), 1e-12)

  def decode(self, z, batch=None, names=None):
    return {n: tfd.Independent(tfd.Deterministic(z), 1) for n in names or ("a", "b")}

  def sample_prior(self, n, seed):
    return tf.ones([n, 3])


def test_attribute_records_have_the_majority_row_and_class_records_do_not():
  truth = np.array([[1, -1, 1], [1, 1, 1], [-1, -1, 1], [1, -1, -1]], np.float32)
  dataset = tf.data.Dataset.from_tensor_slices({"a": truth, "b": truth}).batch(3)
  record = coherence.evaluate(MirrorModel(), dataset, truth, {}, iterations=0, prior_samples=4)
  assert record["majority"] == pytest.approx(0.75)
  assert record["pairs"] == {"a|b": 1.0, "b|a": 1.0} and record["prior"] == 1.0
  text = coherence.markdown([record], ["mirror"])
  assert "| majority baseline | each attribute's commoner test value, always | 0.7500 |" in text
  # beside a record of classes, whose cell is a dash
  labels = np.array([0, 1, 2, 3, 0, 1])
  classes = coherence.evaluate(
    KnownModel((PIC, LABEL), {}),
    dataset_of(picture_of(labels), labels),
    labels,
    {},
    iterations=0,
    prior_samples=0,
  )
  assert "majority" not in classes
  assert "majority baseline" not in coherence.markdown([classes], ["known"])
  both = coherence.markdown([record, classes], ["mirror", "known"])
  assert "| majority baseline | each attribute's commoner test value, always | 0.7500 | — |" in both


def test_the_image_classifier_trains_only_on_examples_holding_image_and_class(monkeypatch):
  """A user's empty cells kept (missing=keep): the coherence classifier of the image learns from
  the training examples that hold both the image and its class, not from blank images or the
  class index standing in for a missing class."""
  from jmvae_tf.core.own_data import OwnDataSet
  from jmvae_tf.evaluation import coherence

  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (12, 6, 6), dtype=np.uint8)
  classes = np.array(["a", "b", "c"] * 4, dtype=object)
  classes[[1, 4]] = None  # two training examples lack their class
  masked_images = np.ma.masked_array(images, mask=np.zeros_like(images, bool))
  masked_images.mask[7] = True  # one lacks its image
  data = OwnDataSet(
    {"image": "image", "label": "class"},
    train={"image": masked_images, "label": classes},
    test={"image": images[:3], "label": np.array(["a", "b", "c"], dtype=object)},
    missing="keep",
  )
  seen = {}

  def fake_train(shape, outputs, attributes, train, test, epochs, seed, num_train):
    seen["num_train"] = num_train
    seen["labels"] = np.concatenate([labels for _, labels in train.as_numpy_iterator()])
    seen["images"] = np.concatenate([x for x, _ in train.as_numpy_iterator()])
    return "classifier"

  monkeypatch.setattr(coherence, "train_classifier", fake_train)
  monkeypatch.setattr(coherence, "cached_classifier", lambda directory, key, train, *a: train())
  coherence.data_readers(data, epochs=1, data_seed=0)
  kept = [0, 2, 3, 5, 6, 8, 9, 10, 11]
  assert seen["num_train"] == 9
  np.testing.assert_array_equal(seen["labels"], np.array([0, 1, 2] * 4)[kept])
  assert len(seen["images"]) == 9 and all(np.any(x) for x in seen["images"])
