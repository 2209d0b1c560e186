"""pipelines/captioning.py: the caption options every built-in data set takes (checked, with
messages naming the option), and the Captioner on a toy grammar: its vocabulary, the tokens of
a batch's captions, the templates' streams and the texts of a held-out split. The data sets'
own captions are tested beside each data set (test_pipelines_mnist.py, ...)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from jmvae_tf.core import files
from jmvae_tf.core.data import DataError
from jmvae_tf.core.modalities import SEQUENCE
from jmvae_tf.core.text import Vocabulary
from pipelines import captioning, captions, registry
from pipelines.captioning import Captioner, CaptionOptions, take_options

TOY = captions.ClassCaptions(
  "toy", {"word": ("zero", "one", "two")}, ("a {word}", "the number {word} here", "{word}")
)


def test_no_caption_option_is_no_captions():
  assert take_options("mnist", {}) == (None, {})
  assert take_options("mnist", {"crop": "center"}) == (None, {"crop": "center"})


def test_the_caption_options_are_taken_and_the_rest_left():
  options, rest = take_options(
    "celeb_a",
    {"captions": "added", "crop": "center", "caption_tokens": "12", "caption_vocabulary": "40"},
  )
  assert options == CaptionOptions("added", 12, 40) and rest == {"crop": "center"}
  assert not options.replaces_labels
  options, rest = take_options("mnist", {"captions": "instead"})
  assert options == CaptionOptions("instead") and options.replaces_labels and rest == {}
  assert take_options("mnist", {"captions": "instead", "caption_tokens": "2"})[0].max_tokens == 2
  assert take_options("mnist", {"captions": "added", "caption_tokens": "512"})[0].max_tokens == 512
  assert take_options("m", {"captions": "added", "caption_vocabulary": "3"})[0].max_vocabulary == 3


def out_of_range(key: str, value: str, low: int, high: int) -> str:
  return re.escape(
    f"--data_options: {key}={value!r} for mnist is out of range; it must be a whole number "
    f"in [{low}, {high}]"
  )


@pytest.mark.parametrize(
  "options, message",
  [
    (
      {"captions": "x"},
      re.escape("--data_options: captions='x' for mnist; choose from ['instead', 'added']"),
    ),
    ({"captions": "Instead"}, "--data_options: captions='Instead' for mnist; choose from"),
    ({"captions": "instead", "caption_tokens": "1"}, out_of_range("caption_tokens", "1", 2, 512)),
    (
      {"captions": "added", "caption_tokens": "513"},
      out_of_range("caption_tokens", "513", 2, 512),
    ),
    ({"captions": "added", "caption_tokens": "0"}, out_of_range("caption_tokens", "0", 2, 512)),
    (
      {"captions": "added", "caption_tokens": "5.0"},
      out_of_range("caption_tokens", "5.0", 2, 512),
    ),
    ({"captions": "added", "caption_tokens": "ten"}, out_of_range("caption_tokens", "ten", 2, 512)),
    ({"captions": "added", "caption_tokens": ""}, out_of_range("caption_tokens", "", 2, 512)),
    (
      {"captions": "instead", "caption_vocabulary": "2"},
      out_of_range("caption_vocabulary", "2", 3, 1_000_000),
    ),
    (
      {"captions": "instead", "caption_vocabulary": "-5"},
      out_of_range("caption_vocabulary", "-5", 3, 1_000_000),
    ),
    (
      {"captions": "instead", "caption_vocabulary": "1e3"},
      out_of_range("caption_vocabulary", "1e3", 3, 1_000_000),
    ),
    (
      {"caption_tokens": "8"},
      re.escape("--data_options: caption_tokens for mnist need captions=instead|added"),
    ),
    (
      {"caption_vocabulary": "8", "caption_tokens": "8"},
      re.escape(
        "--data_options: caption_tokens, caption_vocabulary for mnist need captions=instead|added"
      ),
    ),
  ],
)
def test_bad_caption_options_are_refused_naming_the_option(options, message):
  with pytest.raises(DataError, match=f"^{message}"):
    take_options("mnist", options)


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory) -> Path:
  from tiny_runs import write_fake_mnist

  return write_fake_mnist(tmp_path_factory.mktemp("captioning_mnist"), num_train=30, num_test=10)


@pytest.mark.parametrize(
  "options, message",
  [
    (["captions=x"], "--data_options: captions='x' for mnist; choose from"),
    (["captions=instead", "caption_tokens=1"], out_of_range("caption_tokens", "1", 2, 512)),
    (
      ["captions=added", "caption_vocabulary=2"],
      out_of_range("caption_vocabulary", "2", 3, 1_000_000),
    ),
    (["caption_tokens=6"], re.escape("--data_options: caption_tokens for mnist need captions=")),
  ],
)
def test_a_data_set_refuses_bad_caption_options(fake_mnist, options, message):
  with pytest.raises(DataError, match=f"^{message}"):
    registry.make_dataset("mnist", str(fake_mnist), options=options)


def test_a_data_set_takes_the_caption_options(fake_mnist):
  data = registry.make_dataset(
    "mnist", str(fake_mnist), options=["captions=added", "caption_tokens=8"]
  )
  assert data.captioner.options == CaptionOptions("added", 8)
  assert data.modalities[-1].shape == (8, data.captioner.vocabulary.size)


# --- the Captioner on a toy grammar -------------------------------------------------------------


@pytest.fixture(scope="module")
def toy() -> Captioner:
  return Captioner("toy", TOY, CaptionOptions("instead"), TOY.corpus())


def test_the_vocabulary_is_built_from_the_corpus_and_holds_its_longest_caption(toy):
  assert toy.vocabulary == Vocabulary.build(TOY.corpus(), 5)  # 4 words and <eos>
  assert toy.vocabulary.max_tokens == 5
  assert set(toy.vocabulary.words) == {"a", "the", "number", "here", "zero", "one", "two"}
  modality = toy.modality
  assert modality.name == captioning.CAPTION and modality.kind == "tokens"
  assert modality.family == SEQUENCE and modality.shape == toy.vocabulary.shape
  assert modality.text == toy.vocabulary
  assert modality == captioning.caption_modality(toy.vocabulary)


def test_tokens_are_the_grammars_captions_and_read_back_to_the_class(toy):
  classes = np.array([0, 1, 2, 2, 1, 0, 0, 1, 2])
  templates = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
  tokens = toy.tokens(tf.constant(classes), tf.constant(templates, tf.int32))
  assert tokens.shape == (9,) + toy.vocabulary.shape
  texts = toy.vocabulary.decode_numpy(tokens)
  assert texts == [TOY.caption(c, k) for c, k in zip(classes, templates)]
  np.testing.assert_array_equal(toy.read(texts), classes)
  np.testing.assert_array_equal(toy.read(["a three", "two", "the number one"]), [-1, 2, -1])


def test_the_templates_streams_are_pure_functions_of_their_keys(toy):
  first = toy.train_templates(200, tf.constant([4, 0], tf.int64), tf.constant(3, tf.int64))
  again = toy.train_templates(200, tf.constant([4, 0], tf.int64), tf.constant(3, tf.int64))
  np.testing.assert_array_equal(first, again)
  assert set(first.numpy()) == {0, 1, 2}  # every template drawn, none outside
  for other in (([4, 1], 3), ([4, 0], 4), ([5, 0], 3)):
    drawn = toy.train_templates(200, tf.constant(other[0], tf.int64), tf.constant(other[1]))
    assert not np.array_equal(drawn.numpy(), first.numpy()), other
  held = toy.eval_templates(200, seed=0).numpy()
  np.testing.assert_array_equal(toy.eval_templates(200, seed=0), held)
  assert set(held) == {0, 1, 2}
  assert not np.array_equal(toy.eval_templates(200, seed=1).numpy(), held)
  # an example's template does not depend on how many are drawn (a num_examples prefix)
  np.testing.assert_array_equal(toy.eval_templates(37, seed=0).numpy(), held[:37])


def test_held_out_texts_are_the_eval_templates_captions(toy):
  classes = np.array([2, 0, 1, 1, 0])
  templates = toy.eval_templates(50, seed=3).numpy()[:5]
  texts = toy.held_out_texts(classes, 50, seed=3)
  assert list(texts) == [TOY.caption(c, k) for c, k in zip(classes, templates)]
  assert list(toy.held_out_texts(classes, 50)) == list(toy.held_out_texts(classes, 50, seed=0))


def test_a_long_caption_is_cut_with_one_line_and_a_bad_vocabulary_is_a_data_error(
  capsys, monkeypatch
):
  monkeypatch.setattr(files, "_WARNED", set())
  cut = Captioner("toy", TOY, CaptionOptions("added", max_tokens=3), TOY.corpus())
  Captioner("toy", TOY, CaptionOptions("added", max_tokens=3), TOY.corpus())  # said once
  err = capsys.readouterr().err
  assert err == (
    "warning: toy captions: 3 of 9 training captions have more than 2 words (caption_tokens=3,"
    " its end included); they are cut to 2, the longest has 4\n"
  )
  tokens = cut.tokens(tf.constant([1, 1, 1]), tf.constant([0, 1, 2]))
  assert cut.vocabulary.decode_numpy(tokens) == ["a one", "the number", "one"]
  Captioner("toy", TOY, CaptionOptions("added", max_tokens=5), TOY.corpus())
  assert capsys.readouterr().err == ""  # no caption is cut
  with pytest.raises(DataError, match="^toy captions: a vocabulary of 2 tokens has no room"):
    Captioner("toy", TOY, CaptionOptions("added", max_vocabulary=2), TOY.corpus())


def test_caption_vocabulary_keeps_the_most_frequent_words():
  small = Captioner("toy", TOY, CaptionOptions("added", max_vocabulary=5), TOY.corpus())
  # in the corpus "zero", "one" and "two" are 3 each, "a", "the", "number", "here" 3 each too:
  # whichever three are kept, the vocabulary is Keras' own of the corpus
  assert small.vocabulary == Vocabulary.build(TOY.corpus(), 5, 5)
  assert small.vocabulary.size == 5


def test_every_caption_is_every_row_under_every_template():
  classes = np.array([2, 0, 1])
  texts = captioning.every_caption(TOY, classes)
  assert list(texts) == [TOY.caption(c, k) for c in classes for k in range(3)]
  rng = np.random.default_rng(0)
  faces = np.where(rng.random((3, 40)) < 0.3, 1, -1).astype(np.int8)
  texts = captioning.every_caption(captions.FACES, faces, chunk=2)  # chunks join in order
  expected = [
    captions.FACES.caption(a, k) for a in faces for k in range(captions.FACES.num_templates)
  ]
  assert list(texts) == expected
