"""Captions of a model with a text modality (jmvae_tf/inspection/captions.py), on untrained
models (what is tested is the plumbing: which rows, columns and panels, the same text for the
same seed, what a bad caption says): MNIST's digits captioned by their class, from the
project's real MNIST, and a few synthetic faces captioned by their attributes."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from model_configs import mnist_config

import jmvae_tf
from jmvae_tf.inspection import captions
from jmvae_tf.models.config import build_model
from pipelines import registry, synthetic_faces

NUM = 6  # held-out examples shown
SMALL = dict(architecture="generic", architecture_options={"hidden": "16"}, latent_dim=4)


def image_panels(fig) -> int:
  return sum(1 for ax in fig.axes if ax.images)


def load_png(path) -> np.ndarray:
  return tf.io.decode_png(open(path, "rb").read()).numpy()


@pytest.fixture(scope="module")
def mnist(mnist_dir):
  """(data: MNIST with captions instead of labels, an untrained JMVAE-kl, NUM test examples);
  small generic networks: what is drawn depends on the modalities only."""
  data = registry.make_dataset("mnist", str(mnist_dir), num_train=200, options=["captions=instead"])
  model = jmvae_tf.make_model("jmvae_kl", data, **SMALL)
  examples = next(iter(data.eval_dataset("test", NUM, num_examples=NUM)))
  return data, model, examples


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
  """(data: 20 synthetic faces with their captions added, an untrained JMVAE-kl, the test
  faces)."""
  directory = tmp_path_factory.mktemp("faces")
  synthetic_faces.generate(directory, 20)
  data = registry.make_dataset("celeb_a", str(directory), options=["captions=added"])
  model = jmvae_tf.make_model("jmvae_kl", data, **SMALL)
  n = data.num_examples("test")
  return data, model, next(iter(data.eval_dataset("test", n, num_examples=n)))


def true_captions(data, examples):
  vocabulary = next(m for m in data.modalities if m.name == "caption").text
  return vocabulary.decode_numpy(examples["caption"])


def table_cells(markdown: str):
  """The rows of the Markdown table that opens `markdown`, as lists of cells."""
  lines = [line for line in markdown.split("\n\n")[0].splitlines()]
  return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_caption_rows_one_row_per_example_the_true_caption_first(mnist):
  data, model, examples = mnist
  (row,) = captions.caption_rows(model, examples, seed=3)
  assert row.tag == "caption/generated"
  header, rule, *rows = table_cells(row.text)
  assert header == ["#", "true caption", "from all, mean z", "from image"]
  assert set(rule) == {"---"}
  assert len(rows) == NUM
  assert [r[1] for r in rows] == true_captions(data, examples)
  assert all(len(r) == len(header) for r in rows)
  assert "q(z|image)" in row.description and "most probable word" in row.description
  # The same seed, the same text (every epoch of training draws it the same way).
  assert captions.caption_rows(model, examples, seed=3) == [row]


def test_jmvae_generates_captions_from_the_image_by_iterative_sampling(mnist):
  data, _, examples = mnist
  model = jmvae_tf.make_model("jmvae", data, **SMALL)
  (row,) = captions.caption_rows(model, examples)
  assert table_cells(row.text)[0][-1] == "from image"
  assert f"caption from 0 by iterative sampling, K={captions.ITERATIVE_STEPS}" in row.description


def test_a_model_without_text_has_no_caption_rows_and_is_refused(mnist):
  _, _, examples = mnist
  model = build_model(mnist_config("jmvae_kl", latent_dim=4))
  batch = {"image": examples["image"], "label": tf.one_hot([0] * NUM, 10)}
  assert captions.caption_rows(model, batch) == []
  with pytest.raises(ValueError, match="the model has no text modality .*captions=instead"):
    captions.check_text(model.modality_specs, "the model")


def test_captions_from_images_figure_has_an_image_per_example(mnist, tmp_path):
  data, model, examples = mnist
  truth = data.labels("test", NUM)
  fig = captions.captions_from_images_figure(
    model,
    examples,
    true_captions(data, examples),
    truth=truth,
    read=lambda t: data.read_text("caption", t),
    note=captions.source_note(1.0, 10000),
    columns=4,
  )
  assert image_panels(fig) == NUM
  texts = [t.get_text() for ax in fig.axes for t in ax.texts]
  assert sum("read as" in t for t in texts) == NUM  # a mark under each image
  assert sum(t.startswith("true: ") for t in texts) == NUM
  title = fig._suptitle.get_text().replace("\n", " ")
  assert captions.SOURCE in title.lower() and "10000 real test captions: 1.0000" in title
  png = load_png(captions.save(fig, str(tmp_path / "captions_from_image.png")))
  assert png.shape[1] > png.shape[0] > 200  # two rows of four


def test_verdict_of_a_class_and_of_attributes():
  assert captions.verdict(np.int64(7), np.int64(7)) == ("\u2713 read as 7, right", 1.0)
  assert captions.verdict(np.int64(-1), np.int64(7))[0] == "\u2717 read as no class, true 7"
  assert captions.verdict(np.array([1, -1, 1]), np.array([1, 1, 1])) == (
    "2/3 attributes right",
    pytest.approx(2 / 3),
  )


def test_images_from_captions_a_row_per_caption(mnist, tmp_path):
  _, model, _ = mnist
  given = ["a handwritten seven", "The digit 2!", "a zebra seven"]
  drawn, read, how = captions.images_from_captions(model, given, 3, "image", "caption", seed=1)
  assert drawn.shape == (3, 3, 28, 28, 1)
  assert read == ["a handwritten seven", "the digit 2", "a [UNK] seven"]
  assert how == "z ~ q(z|caption)"
  again, _, _ = captions.images_from_captions(model, given, 3, "image", "caption", seed=1)
  np.testing.assert_array_equal(drawn, again)
  fig = captions.images_from_captions_figure(model, given, num_images=3, seed=1)
  assert image_panels(fig) == 9
  texts = [t.get_text() for ax in fig.axes for t in ax.texts]
  assert "read as: a [UNK] seven" in texts and "read as: a handwritten seven" not in texts
  assert captions.SOURCE in fig._suptitle.get_text().replace("\n", " ").lower()
  png = load_png(captions.save(fig, str(tmp_path / "image_from_captions.png")))
  assert png.shape[0] > 150 and png.shape[1] > 300


@pytest.mark.parametrize(
  "bad, message",
  [
    ("", "caption 2 (''): the caption is empty"),
    ("?!", "caption 2 ('?!'): the caption is empty"),
    ("zebra giraffe", "caption 2: the caption 'zebra giraffe' has only words the vocabulary"),
  ],
)
def test_a_bad_caption_is_refused_by_name(mnist, bad, message):
  _, model, _ = mnist
  with pytest.raises(ValueError) as error:
    captions.images_from_captions_figure(model, ["a seven", bad], num_images=2)
  assert message in str(error.value)


def test_faces_captions_with_attributes_right(faces, tmp_path):
  data, model, examples = faces
  n = len(examples["image"])
  fig = captions.captions_from_images_figure(
    model,
    examples,
    true_captions(data, examples),
    truth=data.labels("test", n),
    read=lambda t: data.read_text("caption", t),
    note=captions.source_note(1.0, n, data.provenance),
  )
  assert image_panels(fig) == n
  texts = [t.get_text() for ax in fig.axes for t in ax.texts]
  assert sum(t.endswith("/40 attributes right") for t in texts) == n
  assert "synthetic faces (not CelebA)" in fig._suptitle.get_text().replace("\n", " ")
  assert load_png(captions.save(fig, str(tmp_path / "faces.png"))).shape[-1] in (3, 4)
  fig = captions.images_from_captions_figure(
    model, ["a smiling woman with eyeglasses"], num_images=2, image="image"
  )
  assert image_panels(fig) == 2
  (picture,) = [ax.images[0].get_array() for ax in fig.axes if ax.images][:1]
  assert picture.shape == (64, 64, 3)  # colour faces
  captions.save(fig, str(tmp_path / "faces_from_captions.png"))
