"""Captions from a grammar and its parser (pipelines/captions.py): every template of every class
and every attribute parses back exactly, the graph writes what Python writes, captions read
back unchanged through a vocabulary, and what the grammar does not produce parses as nothing."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import tensorflow as tf

from jmvae_tf.core.text import Vocabulary
from pipelines import captions as cap
from pipelines.celeba_attributes import ATTRIBUTE_NAMES

CLASS_CAPTIONS = (cap.DIGITS, cap.FASHION, cap.DIGIT_AND_FASHION)
FACES = cap.FACES
A = len(ATTRIBUTE_NAMES)
MALE = ATTRIBUTE_NAMES.index("Male")
# Words read with a vowel sound although spelled otherwise, and the reverse ("a one").
VOWEL_SOUND = {"8", "eight", "11", "18"}
CONSONANT_SOUND = {"one"}


def column(name: str) -> int:
  return ATTRIBUTE_NAMES.index(name)


def absent() -> np.ndarray:
  return -np.ones([A], np.float32)


def only(*names: str) -> np.ndarray:
  attributes = absent()
  attributes[[column(n) for n in names]] = 1
  return attributes


@pytest.fixture(scope="module")
def faces():
  """Random faces (common and rare attributes alike), all absent and all present, each under a
  random template: (attributes [N, A] of {-1, 1}, templates [N])."""
  rng = np.random.default_rng(0)
  attributes = np.where(rng.random([300, A]) < rng.uniform(0.05, 0.6, [300, 1]), 1, -1)
  attributes = np.concatenate([attributes, -np.ones([4, A]), np.ones([4, A])]).astype(np.float32)
  templates = rng.integers(0, FACES.num_templates, len(attributes))
  templates[-8:] = np.tile(np.arange(4), 2)
  return attributes, templates


def check_words(texts) -> None:
  """Lower case, single spaces, no punctuation, and a/an agree with the next word's sound."""
  for text in texts:
    assert re.fullmatch(r"[a-z0-9]+( [a-z0-9]+)*", text), text
    words = text.split()
    for word, following in zip(words, words[1:]):
      if word in ("a", "an"):
        vowel = following[0] in "aeiou" and following not in CONSONANT_SOUND
        expected = "an" if vowel or following in VOWEL_SOUND else "a"
        assert word == expected, text


def round_trip(texts, max_words: int) -> list:
  vocabulary = Vocabulary.build(texts, max_tokens=max_words + 1)
  values = vocabulary.encoder()(tf.constant(texts))
  return vocabulary.decode_numpy(values)


# --- classes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("captions", CLASS_CAPTIONS, ids=lambda c: c.name)
def test_every_class_under_every_template_parses_back(captions) -> None:
  table = captions.table()
  assert table.shape == (10, captions.num_templates) and captions.num_classes == 10
  assert captions.num_templates >= 5
  for c, k in np.ndindex(*table.shape):
    assert captions.caption(c, k) == table[c, k]
  classes = np.repeat(np.arange(10), captions.num_templates)
  parsed = captions.parse(captions.corpus())
  assert parsed.dtype == np.int64 and np.array_equal(parsed, classes)
  assert captions.corpus() == list(table.reshape(-1))
  assert captions.max_words == max(len(t.split()) for t in captions.corpus())
  check_words(captions.corpus())


@pytest.mark.parametrize("captions", CLASS_CAPTIONS, ids=lambda c: c.name)
def test_class_captions_graph_equals_python_and_reads_back(captions) -> None:
  classes, templates = np.meshgrid(np.arange(10), np.arange(captions.num_templates), indexing="ij")
  classes, templates = classes.reshape(-1), templates.reshape(-1)
  eager = [t.decode() for t in captions.captions_graph(classes, templates).numpy()]
  assert eager == captions.corpus()
  dataset = tf.data.Dataset.from_tensor_slices((classes.astype(np.int32), templates))
  mapped = dataset.batch(7).map(captions.captions_graph)
  assert [t.decode() for batch in mapped for t in batch.numpy()] == captions.corpus()
  decoded = round_trip(captions.corpus(), captions.max_words)
  assert decoded == captions.corpus()
  assert np.array_equal(captions.parse(decoded), classes)
  with pytest.raises(tf.errors.InvalidArgumentError):
    captions.captions_graph([10], [0])
  with pytest.raises(IndexError):
    captions.caption(0, captions.num_templates)


def test_digit_wording_and_articles() -> None:
  corpus = set(cap.DIGITS.corpus())
  for text in ("a handwritten seven", "the digit 7", "the number seven", "an image of an 8"):
    assert text in corpus
  assert "an image of a 7" in corpus and "a picture of an eight" in corpus
  assert "a picture of a one" in corpus
  texts = ["a photo of a shirt", "a photo of a top", "the ankle boot"]
  assert cap.FASHION.parse(texts).tolist() == [6, 0, 9]
  assert "a pair of trousers" in cap.FASHION.corpus() and "an ankle boot" in cap.FASHION.corpus()


def test_class_parser_refuses_what_no_template_produces() -> None:
  texts = [
    "",
    "[UNK] seven",
    "a handwritten [UNK]",
    "seven eight",
    "a handwritten seven eight",
    "a handwritten",
    "the digit seven 7",
    "an handwritten seven",
    "a image of a 7",
    "an image of a 8",
    "the digit seven",  # a class word in a template that takes the numeral
    "garbage words here",
    "a handwritten seven please",
  ]
  assert cap.DIGITS.parse(texts).tolist() == [-1] * len(texts)
  assert cap.DIGITS.parse(["  A Handwritten  SEVEN ", b"the digit 7"]).tolist() == [7, 7]
  assert cap.DIGITS.parse(np.array(["seven", "zero"])).tolist() == [7, 0]
  assert cap.DIGITS.parse(tf.constant(["nine"])).tolist() == [9]
  assert cap.FASHION.parse(["a t shirt", "a trousers", "a shirt top"]).tolist() == [-1, -1, -1]
  assert cap.DIGITS.parse([]).shape == (0,)


def test_digit_and_fashion_needs_both_parts_to_agree() -> None:
  captions = cap.DIGIT_AND_FASHION
  assert captions.parse(["a seven beside a sneaker", "the digit 7 and a sneaker"]).tolist() == [
    7,
    7,
  ]
  digit_slots = {s: w for s, w in cap.DIGIT_FORMS.items()}
  fashion_slots = {s: w for s, w in cap.FASHION_FORMS.items()}
  mixed = []
  for template in captions.templates:
    for digit, item in itertools.permutations(range(10), 2):
      slots = {s: w[digit] for s, w in digit_slots.items()}
      slots.update({s: w[item] for s, w in fashion_slots.items()})
      mixed.append(template.format(**slots))
  assert (captions.parse(mixed) == -1).all()
  one_part = ["a seven", "the digit 7", "a sneaker", "a seven beside", "beside a sneaker"]
  assert (captions.parse(one_part) == -1).all()
  assert captions.parse(["a seven beside a bag"]).tolist() == [-1]


def test_class_grammar_refuses_unusable_forms() -> None:
  with pytest.raises(cap.CaptionError, match="not lower-case"):
    cap.ClassCaptions("bad", {"word": ("t-shirt", "bag")}, ("a {word}",))
  with pytest.raises(cap.CaptionError, match="of class 0 and of class 1"):
    cap.ClassCaptions("bad", {"word": ("bag", "bag")}, ("a {word}",))
  with pytest.raises(cap.CaptionError, match="slots"):
    cap.ClassCaptions("bad", {"word": ("bag", "coat")}, ("a {item}",))
  with pytest.raises(cap.CaptionError, match="one form per class"):
    cap.ClassCaptions("bad", {"word": ("bag", "coat"), "a_word": ("a bag",)}, ("{word}",))


# --- attributes ------------------------------------------------------------------------------
def test_every_attribute_alone_under_every_template_parses_back() -> None:
  assert 3 <= FACES.num_templates <= 5
  rows = [absent(), np.ones([A], np.float32)]
  rows += [only(name) for name in ATTRIBUTE_NAMES]
  rows += [np.where(np.arange(A) == i, -1, 1).astype(np.float32) for i in range(A)]  # all but one
  for template in range(FACES.num_templates):
    texts = [FACES.caption(row, template) for row in rows]
    assert np.array_equal(FACES.parse(texts), np.stack(rows)), template
    assert FACES.readable(texts).all()
    check_words(texts)
    graph = FACES.captions_graph(np.stack(rows), np.full([len(rows)], template))
    assert [t.decode() for t in graph.numpy()] == texts


def test_every_pair_of_phrases_parses_back() -> None:
  """Two phrases side by side, under each template: no phrase is read across another."""
  others = [n for n in ATTRIBUTE_NAMES if n != "Male"]
  rows = []
  for a, b in itertools.combinations(others, 2):
    rows.append(only(a, b))
    rows.append(only(a, b, "Male"))
  rows = np.stack(rows)
  for template in range(FACES.num_templates):
    texts = FACES.corpus(rows, np.full([len(rows)], template))
    assert np.array_equal(FACES.parse(texts), rows), template


def test_random_faces_parse_back_and_graph_equals_python(faces) -> None:
  attributes, templates = faces
  texts = FACES.corpus(attributes, templates)
  parsed = FACES.parse(texts)
  assert parsed.dtype == np.float32 and parsed.shape == attributes.shape
  assert np.array_equal(parsed, attributes)
  assert FACES.readable(texts).all()
  check_words(texts)
  graph = FACES.captions_graph(tf.constant(attributes), tf.constant(templates, tf.int32))
  assert [t.decode() for t in graph.numpy()] == texts
  # {0, 1} attributes and integer ones are read alike (> 0 is present).
  zero_one = FACES.captions_graph((attributes > 0).astype(np.int32), templates)
  assert [t.decode() for t in zero_one.numpy()] == texts
  assert FACES.corpus((attributes > 0).astype(np.float32), templates) == texts
  # In a tf.data map and a tf.function, as the pipelines call it.
  dataset = tf.data.Dataset.from_tensor_slices((attributes, templates)).batch(64)
  mapped = [t.decode() for b in dataset.map(FACES.captions_graph) for t in b.numpy()]
  assert mapped == texts
  function = tf.function(FACES.captions_graph)
  assert [t.decode() for t in function(attributes[:5], templates[:5]).numpy()] == texts[:5]


def test_face_captions_read_back_through_a_vocabulary(faces) -> None:
  attributes, templates = faces
  texts = FACES.corpus(attributes, templates)
  decoded = round_trip(texts, FACES.max_words)
  assert decoded == texts
  assert np.array_equal(FACES.parse(decoded), attributes)


def test_face_captions_mention_only_present_attributes() -> None:
  assert FACES.caption(absent(), 0) == "a woman"
  assert FACES.caption(np.zeros([A]), 0) == "a woman"  # {0, 1}: 0 is absent
  assert [FACES.caption(absent(), t) for t in range(4)] == [
    "a woman",
    "a photo of a woman",
    "this is a woman",
    "a portrait of a woman",
  ]
  assert FACES.parse(["a woman"]).tolist() == [absent().tolist()]
  assert FACES.caption(only("Male"), 0) == "a man"
  expected = "a smiling young woman with eyeglasses and black hair"
  assert FACES.caption(only("Smiling", "Young", "Eyeglasses", "Black_Hair"), 0) == expected
  expected = "a photo of a man with a goatee wearing a hat and earrings"
  assert FACES.caption(only("Male", "Goatee", "Wearing_Hat", "Wearing_Earrings"), 1) == expected
  assert FACES.caption(only("Goatee", "Wearing_Hat"), 2) == (
    "this is a woman who has a goatee and is wearing a hat"
  )
  assert FACES.caption(only("Wearing_Hat"), 2) == "this is a woman who is wearing a hat"
  assert FACES.caption(only("Wearing_Necktie"), 3) == "a portrait of a woman wearing a necktie"
  assert FACES.caption(only("5_o_Clock_Shadow", "Male"), 0) == "a man with stubble"
  # The article agrees with the first word after it.
  assert FACES.caption(only("Attractive"), 0) == "an attractive woman"
  assert (
    FACES.caption(only("Young", "Attractive", "Male"), 1) == "a photo of an attractive young man"
  )
  assert FACES.caption(only("Young", "Male"), 0) == "a young man"
  assert FACES.caption(only("Oval_Face"), 0) == "a woman with an oval face"
  assert FACES.max_words == len(FACES.caption(np.ones([A]), 2).split())
  assert FACES.max_words >= max(len(FACES.caption(np.ones([A]), t).split()) for t in range(4))


def test_face_parser_reads_what_it_can_of_stray_captions() -> None:
  texts = [
    "",
    "garbage words here",
    "a smiling [UNK] woman with eyeglasses and [UNK] hair",
    "a woman with a hat",
    "a man and a woman",
    "a smiling person",
    "a photo of a man with a goatee wearing a hat",
    "  A Photo of a MAN  ",
    "a woman with black hair black hair",
  ]
  parsed = FACES.parse(texts)
  assert parsed.shape == (len(texts), A)
  unreadable = absent()
  unreadable[MALE] = 0  # neither noun: Male is not stated either way
  assert np.array_equal(parsed[0], unreadable) and np.array_equal(parsed[1], unreadable)
  assert np.array_equal(parsed[2], only("Smiling", "Eyeglasses"))
  assert np.array_equal(parsed[3], only("Wearing_Hat"))
  assert parsed[4, MALE] == 0  # both nouns: never right about Male
  assert parsed[5, MALE] == 0 and parsed[5, column("Smiling")] == 1
  assert np.array_equal(parsed[6], only("Male", "Goatee", "Wearing_Hat"))
  assert np.array_equal(parsed[7], only("Male"))
  assert np.array_equal(parsed[8], only("Black_Hair"))
  readable = FACES.readable(texts)
  assert readable.dtype == bool
  assert readable.tolist() == [False, False, False, False, False, False, True, True, False]
  # Out of order, or the wrong article: read for what it states, yet not readable.
  texts = [
    "a woman with black hair and eyeglasses",
    "an young man",
    "a woman wearing a hat with bangs",
  ]
  expected = [only("Eyeglasses", "Black_Hair"), only("Young", "Male"), only("Wearing_Hat", "Bangs")]
  assert np.array_equal(FACES.parse(texts), np.stack(expected))
  assert not FACES.readable(texts).any()


def test_face_grammar_is_checked() -> None:
  assert cap.spans(("hair", "and"), [("black", "hair"), ("and",)])
  assert not cap.spans(("black", "hair"), [("black", "hair"), ("and",)])
  with pytest.raises(cap.CaptionError, match="hat"):
    cap.AttributeCaptions(templates=[cap.AttributeTemplate("a hat of", "with", "in", "in")])
  with pytest.raises(cap.CaptionError, match="no caption phrase"):
    cap.AttributeCaptions(names=("Smiling", "Freckles"))
  with pytest.raises(cap.CaptionError, match="not lower-case"):
    cap.AttributeCaptions(templates=[cap.AttributeTemplate("a photo of,", "with", "in", "in")])
  with pytest.raises(cap.CaptionError, match="40 attributes"):
    FACES.caption(np.ones([39]), 0)
  with pytest.raises(tf.errors.InvalidArgumentError):
    FACES.captions_graph(np.ones([1, A]), [FACES.num_templates])


def test_a_subset_of_attributes_without_male() -> None:
  captions = cap.AttributeCaptions(names=("Eyeglasses", "Smiling", "Wearing_Hat"))
  rows = np.array([[1, 1, 1], [-1, -1, -1], [1, -1, 1]], np.float32)
  texts = captions.corpus(rows, [0, 1, 2])
  assert texts == [
    "a smiling person with eyeglasses wearing a hat",
    "a photo of a person",
    "this is a person who has eyeglasses and is wearing a hat",
  ]
  assert [t.decode() for t in captions.captions_graph(rows, [0, 1, 2]).numpy()] == texts
  assert np.array_equal(captions.parse(texts), rows)
  assert captions.readable(texts).all()
