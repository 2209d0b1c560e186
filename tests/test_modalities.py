"""jmvae_tf/modalities.py: a Modality is a name, a likelihood (or its kind's name) and an event
shape, checked as it is made (messages name the modality), written to run.json and read back."""

import json

import numpy as np
import pytest

from jmvae_tf import likelihoods
from jmvae_tf.likelihoods import BERNOULLI, CATEGORICAL, GAUSSIAN_FIXED
from jmvae_tf.modalities import Modality, by_name, subset_name
from pipelines.mnist import mnist_modalities


def test_a_kind_name_or_a_likelihood_makes_the_same_modality():
  named = Modality("image", "bernoulli", (28, 28, 1))
  assert named.likelihood is BERNOULLI and named.kind == "bernoulli"
  assert named == Modality("image", BERNOULLI, [28, 28, 1])
  coerced = Modality("x", "gaussian", [np.int64(2), 3.0])
  assert coerced.shape == (2, 3) and all(type(d) is int for d in coerced.shape)


@pytest.mark.parametrize(
  "kind, shape, message",
  [
    ("poisson", (3,), "modality 'counts': kind 'poisson' is not one of"),
    (BERNOULLI, (0,), r"modality 'counts': shape \(0,\) must be non-empty and positive"),
    (BERNOULLI, (), r"modality 'counts': shape \(\) must be non-empty and positive"),
    (BERNOULLI, (4, -1), r"modality 'counts': shape \(4, -1\) must be non-empty and positive"),
    (CATEGORICAL, (2, 5), r"categorical modality 'counts' needs shape \(num_classes,\), got"),
    (CATEGORICAL, (16, 16, 3), "categorical modality 'counts' needs shape"),
  ],
)
def test_bad_kinds_and_shapes_are_refused_naming_the_modality(kind, shape, message):
  with pytest.raises(ValueError, match=message):
    Modality("counts", kind, shape)


def test_bad_modalities_are_refused():
  with pytest.raises(ValueError, match="kind"):
    Modality("x", "poisson", (3,))
  with pytest.raises(ValueError, match="shape"):
    Modality("x", BERNOULLI, (0,))
  with pytest.raises(ValueError, match="num_classes"):
    Modality("x", CATEGORICAL, (2, 5))
  with pytest.raises(ValueError, match="categorical modality 'x' needs shape"):
    Modality("x", CATEGORICAL, (16, 16, 3))


@pytest.mark.parametrize("kind", likelihoods.KINDS)
def test_to_dict_and_from_dict_round_trip_through_json(kind):
  shape = (10,) if kind == "categorical" else (4, 4, 3)
  made = Modality("m", kind, shape)
  d = json.loads(json.dumps(made.to_dict()))
  assert d == {"name": "m", "kind": kind, "shape": list(shape)}
  assert Modality.from_dict(d) == made


def test_size_and_is_image():
  image, label = mnist_modalities()
  assert (image.size, image.is_image) == (784, True)
  assert (label.size, label.is_image) == (10, False)
  assert Modality("a", GAUSSIAN_FIXED, (40,)).size == 40
  assert not Modality("grey", BERNOULLI, (28, 28)).is_image  # rank 2 is not a picture here


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
