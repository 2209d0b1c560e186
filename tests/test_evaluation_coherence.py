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
