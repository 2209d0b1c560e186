"""jmvae_tf/core/modalities.py: a Modality is a name, a likelihood (or its kind's name), an event
shape and a network family, checked as it is made (messages name the modality), written to
run.json and read back. The family is declared, never read off the shape's rank."""

import json

import numpy as np
import pytest

from jmvae_tf.core import likelihoods, modalities
from jmvae_tf.core.likelihoods import BERNOULLI, CATEGORICAL, GAUSSIAN, GAUSSIAN_FIXED
from jmvae_tf.core.modalities import IMAGE, VECTOR, Modality, by_name, subset_name
from pipelines.mnist import mnist_modalities


def test_a_kind_name_or_a_likelihood_makes_the_same_modality():
  named = Modality("image", "bernoulli", (28, 28, 1), IMAGE)
  assert named.likelihood is BERNOULLI and named.kind == "bernoulli"
  assert named == Modality("image", BERNOULLI, [28, 28, 1], "image")
  coerced = Modality("x", "gaussian", [np.int64(2), 3.0], VECTOR)
  assert coerced.shape == (2, 3) and all(type(d) is int for d in coerced.shape)


@pytest.mark.parametrize(
  "kind, shape, message",
  [
    ("no_such_kind", (3,), "modality 'counts': unknown likelihood kind 'no_such_kind'; choose"),
    (BERNOULLI, (0,), r"modality 'counts': shape \(0,\) must be non-empty and positive"),
    (BERNOULLI, (), r"modality 'counts': shape \(\) must be non-empty and positive"),
    (BERNOULLI, (4, -1), r"modality 'counts': shape \(4, -1\) must be non-empty and positive"),
    (CATEGORICAL, (2, 5), r"categorical modality 'counts' needs shape \(num_classes,\), got"),
    (CATEGORICAL, (16, 16, 3), "categorical modality 'counts' needs shape"),
  ],
)
def test_bad_kinds_and_shapes_are_refused_naming_the_modality(kind, shape, message):
  with pytest.raises(ValueError, match=message):
    Modality("counts", kind, shape, VECTOR)


def test_bad_modalities_are_refused():
  with pytest.raises(ValueError, match="kind"):
    Modality("x", "no_such_kind", (3,), VECTOR)
  with pytest.raises(ValueError, match="shape"):
    Modality("x", BERNOULLI, (0,), VECTOR)
  with pytest.raises(ValueError, match="num_classes"):
    Modality("x", CATEGORICAL, (2, 5))
  with pytest.raises(ValueError, match="categorical modality 'x' needs shape"):
    Modality("x", CATEGORICAL, (16, 16, 3))


@pytest.mark.parametrize("kind", likelihoods.LIKELIHOODS.names())
def test_to_dict_and_from_dict_round_trip_through_json(kind):
  shape, family = {"categorical": ((10,), VECTOR), "tokens": ((6, 5), VECTOR)}.get(
    kind, ((4, 4, 3), IMAGE)
  )
  made = Modality("m", kind, shape, family)
  d = json.loads(json.dumps(made.to_dict()))
  assert d == {"name": "m", "kind": kind, "shape": list(shape), "family": family}
  assert Modality.from_dict(d) == made


def test_the_family_is_declared_or_the_likelihoods_own_never_the_ranks():
  image, label = mnist_modalities()
  assert (image.family, label.family) == (IMAGE, VECTOR)
  assert (image.size, label.size) == (784, 10)
  assert Modality("w", CATEGORICAL, (10,)).family == VECTOR  # a class is a vector
  # A rank-3 modality may be a vector (e.g. a spectrogram read by an MLP) ...
  assert Modality("spectrogram", GAUSSIAN, (8, 8, 2), VECTOR).family == VECTOR
  # ... and a kind that serves several families does not guess: the modality must say.
  with pytest.raises(ValueError) as refused:
    Modality("image", BERNOULLI, (28, 28, 1))
  assert str(refused.value) == (
    "modality 'image': say its network family (family='image' or 'vector', or a registered "
    f"one: {list(modalities.FAMILIES.names())}); kind 'bernoulli' serves several"
  )
  assert Modality("a", GAUSSIAN_FIXED, (40,), VECTOR).size == 40


def test_a_family_checks_the_shapes_its_networks_read():
  with pytest.raises(ValueError) as refused:
    Modality("grey", BERNOULLI, (28, 28), IMAGE)
  assert str(refused.value) == (
    "modality 'grey' of the image family needs shape (height, width, channels), got (28, 28)"
  )
  with pytest.raises(ValueError, match="modality 'x': unknown network family 'graph'"):
    Modality("x", GAUSSIAN, (5,), "graph")


def test_a_registered_family_is_accepted_and_its_check_applies():
  def one_dimensional(name, shape):
    if len(shape) != 1:
      raise ValueError(f"{name}: a sequence is one-dimensional, got {shape}")

  family = modalities.register_family("test_sequence", "token ids", one_dimensional)
  assert family.name == "test_sequence"
  assert modalities.FAMILIES.plugin_module("test_sequence") == __name__
  assert Modality("tokens", GAUSSIAN, (12,), "test_sequence").family == "test_sequence"
  with pytest.raises(ValueError, match="tokens: a sequence is one-dimensional, got"):
    Modality("tokens", GAUSSIAN, (3, 4), "test_sequence")
  modalities.register_family("test_sequence", "again")  # this module run again: no clash
  with pytest.raises(ValueError, match="network family 'test_sequence' is registered already"):
    modalities.FAMILIES.register("test_sequence", family, "another_module")


def test_by_name_finds_a_modality_or_names_those_there_are():
  mods = mnist_modalities()
  assert by_name(mods, "label") is mods[1]
  with pytest.raises(ValueError) as refused:
    by_name(mods, "text")
  assert str(refused.value) == "no modality named 'text'; have ['image', 'label']"


def test_subset_name_is_the_sorted_names_joined():
  assert subset_name(["label", "image"]) == "image+label"
  assert subset_name(("w", "x", "attributes"), ",") == "attributes,w,x"
  assert subset_name(["image"]) == "image"


# --- text: a tokens modality with its vocabulary -----------------------------------------------
TOKENS_OF_FIVE = ("[UNK]", "<eos>", "a", "seven", "digit")


def test_a_vocabulary_goes_to_json_and_back_and_gives_the_text():
  from jmvae_tf.core.text import Vocabulary

  made = Modality("caption", likelihoods.TOKENS, (4, 5), vocabulary=list(TOKENS_OF_FIVE))
  assert made.family == modalities.SEQUENCE and made.vocabulary == TOKENS_OF_FIVE
  d = json.loads(json.dumps(made.to_dict()))
  assert d == {
    "name": "caption",
    "kind": "tokens",
    "shape": [4, 5],
    "family": "sequence",
    "vocabulary": list(TOKENS_OF_FIVE),
  }
  back = Modality.from_dict(d)
  assert back == made and back.vocabulary == TOKENS_OF_FIVE
  assert made.text == Vocabulary(TOKENS_OF_FIVE, 4)
  assert made.text.max_tokens == 4 and made.text.shape == made.shape
  # another vocabulary is another modality
  other = Modality("caption", "tokens", (4, 5), vocabulary=TOKENS_OF_FIVE[:4] + ("eight",))
  assert other != made


def test_without_a_vocabulary_there_is_no_vocabulary_key_and_no_text():
  plain = Modality("caption", "tokens", (4, 5))
  assert plain.vocabulary is None and plain.text is None
  assert "vocabulary" not in plain.to_dict()
  assert Modality.from_dict(plain.to_dict()) == plain
  image, label = mnist_modalities()
  assert "vocabulary" not in image.to_dict() and label.text is None


@pytest.mark.parametrize(
  "kind, shape, vocabulary, message",
  [
    (
      CATEGORICAL,
      (5,),
      TOKENS_OF_FIVE,
      r"^modality 'caption': a categorical modality has no vocabulary$",
    ),
    (
      BERNOULLI,
      (4, 5),
      TOKENS_OF_FIVE,
      r"^modality 'caption': a bernoulli modality has no vocabulary$",
    ),
    (
      "tokens",
      (4, 6),
      TOKENS_OF_FIVE,
      r"^modality 'caption': a vocabulary of 5 tokens for 6 columns; they must be equal$",
    ),
    (
      "tokens",
      (4, 4),
      TOKENS_OF_FIVE,
      r"^modality 'caption': a vocabulary of 5 tokens for 4 columns",
    ),
    (
      "tokens",
      (4, 5),
      ("<eos>", "[UNK]", "a", "seven", "digit"),
      r"^modality 'caption': a vocabulary starts with \['\[UNK\]', '<eos>'\]",
    ),
    (
      "tokens",
      (4, 5),
      ("[UNK]", "<eos>", "a", "seven", "a"),
      r"^modality 'caption': vocabulary token 4 \('a'\) must be a word",
    ),
    (
      "tokens",
      (4, 5),
      ("[UNK]", "<eos>", "a", "the seven", "digit"),
      r"^modality 'caption': vocabulary token 3 \('the seven'\) must be a word",
    ),
  ],
)
def test_a_bad_vocabulary_is_refused_naming_the_modality(kind, shape, vocabulary, message):
  family = VECTOR if kind == BERNOULLI else None
  with pytest.raises(ValueError, match=message):
    Modality("caption", kind, shape, family, vocabulary)
  d = {"name": "caption", "kind": getattr(kind, "kind", kind), "shape": list(shape)}
  with pytest.raises(ValueError, match=message):  # as run.json is read back
    Modality.from_dict({**d, "family": family, "vocabulary": list(vocabulary)})


def test_a_text_modality_of_one_position_is_refused_when_made():
  with pytest.raises(ValueError, match="^modality 'caption': .*at least 2 positions"):
    Modality("caption", "tokens", (1, 5), vocabulary=TOKENS_OF_FIVE)
