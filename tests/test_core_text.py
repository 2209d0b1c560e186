"""jmvae_tf/core/text.py: a caption's vocabulary (built by TextVectorization, most frequent word
first, reserved tokens first), captions to one-hot tokens (words, <eos>, all-zero padding; cut
to T - 1 words) and back, the checks' messages, and that padding never changes a loss."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from jmvae_tf.core import likelihoods, text
from jmvae_tf.core.text import EOS, UNKNOWN, TextError, Vocabulary

# "the" 4 times, "cat" 3, "sat" 2, "mat" 1: distinct counts, so the order is the frequency's.
CORPUS = ["The CAT sat.", "the cat, sat mat", "the cat!", "THE"]
WORDS = ("the", "cat", "sat", "mat")


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
  return Vocabulary.build(CORPUS, max_tokens=5)


def columns(values) -> np.ndarray:
  """The column of each position, -1 for an all-zero row (padding)."""
  values = np.asarray(values)
  return np.where(values.sum(-1) > 0, values.argmax(-1), -1)


def test_build_puts_the_reserved_tokens_first_then_the_most_frequent_words(vocabulary):
  assert vocabulary.tokens == (UNKNOWN, EOS) + WORDS
  assert vocabulary.words == WORDS
  assert vocabulary.size == 6 and vocabulary.max_tokens == 5 and vocabulary.shape == (5, 6)


def test_max_size_keeps_the_most_frequent_words_and_reads_the_others_as_unknown():
  small = Vocabulary.build(CORPUS, max_tokens=5, max_size=4)
  assert small.tokens == (UNKNOWN, EOS, "the", "cat")
  values, words, unknown = small.encoder().encode(["the sat cat mat"])
  np.testing.assert_array_equal(columns(values)[0], [2, 0, 3, 0, 1])
  assert words.numpy().tolist() == [4] and unknown.numpy().tolist() == [2]
  assert small.decode_numpy(values) == ["the [UNK] cat [UNK]"]


def test_encode_gives_the_words_then_eos_then_all_zero_rows(vocabulary):
  values, words, unknown = vocabulary.encoder().encode(["the cat", "mat", "Sat, the DOG."])
  values = values.numpy()
  assert values.shape == (3, 5, 6) and values.dtype == np.float32
  assert set(np.unique(values)) == {0.0, 1.0}
  np.testing.assert_array_equal(
    columns(values), [[2, 3, 1, -1, -1], [5, 1, -1, -1, -1], [4, 2, 0, 1, -1]]
  )
  np.testing.assert_array_equal(values.sum(-1), columns(values) >= 0)  # one-hot or zeros
  assert words.numpy().tolist() == [2, 1, 3] and unknown.numpy().tolist() == [0, 0, 1]


def test_a_caption_over_t_minus_1_words_is_cut_and_keeps_its_eos(vocabulary):
  long = "the cat sat mat the cat sat"  # 7 words; T = 5 holds 4 and <eos>
  values, words, _ = vocabulary.encoder().encode([long, "the cat sat mat"])
  np.testing.assert_array_equal(columns(values), [[2, 3, 4, 5, 1], [2, 3, 4, 5, 1]])
  assert words.numpy().tolist() == [7, 4]  # before the cut
  assert vocabulary.decode_numpy(values) == ["the cat sat mat"] * 2


def test_decode_of_encode_is_the_standardized_caption(vocabulary):
  captions = ["The CAT sat!", "  mat,  the  ", "cat", "the dog sat"]
  values = vocabulary.encoder()(tf.constant(captions))
  assert vocabulary.decode_numpy(values) == ["the cat sat", "mat the", "cat", "the [UNK] sat"]
  decoded = vocabulary.decode(values)
  assert decoded.dtype == tf.string and decoded.shape == (4,)


def test_the_encoder_runs_in_a_tf_data_map_and_a_tf_function(vocabulary):
  encoder = vocabulary.encoder()
  eager = encoder(tf.constant(["the cat", "mat sat the"])).numpy()
  mapped = next(iter(tf.data.Dataset.from_tensors(["the cat", "mat sat the"]).map(encoder)))
  np.testing.assert_array_equal(mapped.numpy(), eager)
  traced = tf.function(encoder, input_signature=[tf.TensorSpec([None], tf.string)])
  np.testing.assert_array_equal(traced(tf.constant(["the cat", "mat sat the"])).numpy(), eager)


def test_decode_reads_the_argmax_and_stops_at_the_first_eos_or_all_zero_row(vocabulary):
  rng = np.random.default_rng(0)

  def probabilities(wanted):
    """Rows of probabilities whose most probable column is `wanted` (None: all zeros)."""
    rows = []
    for column in wanted:
      if column is None:
        rows.append(np.zeros(6, np.float32))
        continue
      logits = rng.normal(size=6).astype(np.float32)
      logits[column] = logits.max() + 1.0
      rows.append(np.exp(logits) / np.exp(logits).sum())
    return np.stack(rows)

  values = np.stack(
    [
      probabilities([2, 3, 1, 4, 5]),  # "the cat", then <eos>: what follows is not read
      probabilities([5, None, 2, 3, 1]),  # "mat", then padding: what follows is not read
      probabilities([4, 0, 5, 2, 3]),  # no end: every position, [UNK] as itself
      probabilities([1, 2, 3, 4, 5]),  # <eos> first: the empty caption
    ]
  )
  assert vocabulary.decode_numpy(values) == ["the cat", "mat", "sat [UNK] mat the cat", ""]


@pytest.mark.parametrize("short, long", [(6, 12), (3, 9)])
def test_padding_never_changes_the_tokens_log_likelihood(short, long):
  """The same captions with T = `short` and T = `long`, under logits that agree at the first
  `short` positions (the rest arbitrary), have the same log-likelihood: an all-zero row adds
  exactly 0, and pulls on its logits with gradient 0."""
  captions = ["the cat", "sat", "the cat sat mat the"]  # the last is cut where T = 3
  small = Vocabulary.build(CORPUS, short)
  big = Vocabulary.build(CORPUS, long)
  x_short = small.encoder()(tf.constant(captions))
  x_long = big.encoder()(tf.constant(captions))
  if short == 3:  # a cut caption: its first T - 1 words and <eos>, not its third word
    x_long = big.encoder()(tf.constant(["the cat", "sat", "the cat"]))
  rng = np.random.default_rng(1)
  logits_long = rng.normal(scale=3.0, size=(3, long, 6)).astype(np.float32)
  logits_short = logits_long[:, :short].copy()
  layer_short = likelihoods.TOKENS.distribution_layer((short, 6))
  layer_long = likelihoods.TOKENS.distribution_layer((long, 6))
  params_long = tf.Variable(logits_long.reshape(3, -1))
  with tf.GradientTape() as tape:
    ll_long = layer_long(params_long).log_prob(x_long)
  ll_short = layer_short(tf.constant(logits_short.reshape(3, -1))).log_prob(x_short)
  np.testing.assert_allclose(ll_long.numpy(), ll_short.numpy(), rtol=1e-6, atol=1e-5)
  # by hand: the log-softmax at each real position's column, summed
  log_softmax = logits_short - np.log(np.exp(logits_short).sum(-1, keepdims=True))
  expected = (np.asarray(x_short) * log_softmax).sum((-2, -1))
  np.testing.assert_allclose(ll_short.numpy(), expected, rtol=1e-5, atol=1e-5)
  # a different draw of the padded positions' logits changes nothing, and they get no gradient
  gradient = tape.gradient(ll_long, params_long).numpy().reshape(3, long, 6)
  padding = np.asarray(x_long).sum(-1) == 0
  assert padding.any()
  np.testing.assert_array_equal(gradient[padding], 0.0)
  assert np.abs(gradient[~padding]).min(-1).max() > 0
  other = logits_long.copy()
  other[:, short:] = rng.normal(scale=5.0, size=other[:, short:].shape)
  np.testing.assert_allclose(
    layer_long(tf.constant(other.reshape(3, -1))).log_prob(x_long).numpy(),
    ll_long.numpy(),
    rtol=1e-6,
    atol=1e-5,
  )


def test_write_and_read_round_trip(vocabulary, tmp_path):
  path = tmp_path / "vocabulary.txt"
  vocabulary.write(path)
  assert path.read_text(encoding="utf-8") == "[UNK]\n<eos>\nthe\ncat\nsat\nmat\n"
  assert Vocabulary.read(path, 5) == vocabulary
  assert Vocabulary.read(path, 9) == Vocabulary(vocabulary.tokens, 9)
  accented = Vocabulary((UNKNOWN, EOS, "café", "naïve"), 3)
  accented.write(tmp_path / "accented.txt")
  assert Vocabulary.read(tmp_path / "accented.txt", 3) == accented


@pytest.mark.parametrize(
  "tokens, message",
  [
    ((EOS, UNKNOWN, "a"), r"a vocabulary starts with \['\[UNK\]', '<eos>'\], got \['<eos>'"),
    (("a", "b", "c"), r"a vocabulary starts with"),
    ((UNKNOWN, EOS), "a vocabulary needs at least one word after"),
    ((UNKNOWN, EOS, "a", "b", "a"), r"vocabulary token 4 \('a'\) must be a word"),
    ((UNKNOWN, EOS, "a b"), r"vocabulary token 2 \('a b'\) must be a word"),
    ((UNKNOWN, EOS, "a\tb"), r"vocabulary token 2 \('a\\tb'\) must be a word"),
    ((UNKNOWN, EOS, "a", ""), r"vocabulary token 3 \(''\) must be a word"),
    ((UNKNOWN, EOS, "a", EOS), r"vocabulary token 3 \('<eos>'\) must be a word"),
  ],
)
def test_check_tokens_refuses_what_is_not_a_vocabulary(tokens, message):
  with pytest.raises(TextError, match=message):
    text.check_tokens(tokens)
  with pytest.raises(TextError, match=message):
    Vocabulary(tokens, 4)


def test_check_tokens_accepts_a_vocabulary():
  text.check_tokens((UNKNOWN, EOS, "a"))
  text.check_tokens([UNKNOWN, EOS, "a", "b2", "ü"])


def test_check_captions_names_where_the_bad_caption_came_from(vocabulary):
  where = [f"captions.txt line {i + 1}" for i in range(4)]
  with pytest.raises(TextError, match=r"^captions.txt line 3: the caption is empty"):
    text.check_captions(["the cat", "mat", " ?! ", "dog"], vocabulary, where)
  with pytest.raises(
    TextError,
    match=r"^captions.txt line 2: the caption 'Zebra yak' has only words the vocabulary",
  ):
    text.check_captions(["the cat", "Zebra yak", "mat"], vocabulary, where)
  counts, over = text.check_captions(
    ["the cat sat mat the cat", "the dog", "mat"], vocabulary, where
  )
  assert counts.tolist() == [6, 2, 1] and over == 1  # T = 5 holds 4 words
  counts, over = text.check_captions([], vocabulary, [])
  assert counts.tolist() == [] and over == 0


def test_too_few_positions_or_tokens_or_no_word_are_refused():
  with pytest.raises(TextError, match="at least 2 positions .* got max_tokens=1"):
    Vocabulary((UNKNOWN, EOS, "a"), 1)
  assert Vocabulary((UNKNOWN, EOS, "a"), 2).shape == (2, 3)
  with pytest.raises(TextError, match="a vocabulary of 2 tokens has no room for a word"):
    Vocabulary.build(CORPUS, 5, max_size=2)
  assert Vocabulary.build(CORPUS, 5, max_size=3).tokens == (UNKNOWN, EOS, "the")
  with pytest.raises(TextError, match="the captions hold no word"):
    Vocabulary.build(["!!", " ...", ""], 5)
  with pytest.raises(TextError, match="no captions to build a vocabulary from"):
    Vocabulary.build([], 5)


def test_every_unicode_space_separates_words_as_an_ascii_one_does():
  """TextVectorization splits on ASCII whitespace only: a no-break space or the ideographic
  space of Japanese text would glue two words into one token (and the vocabulary would refuse
  it); the vocabulary and the encoder read every Unicode space as an ASCII one."""
  vocabulary = text.Vocabulary.build(["a red\u00a0cat", "two\u3000dogs", "a\u2009dog"], 5)
  assert set(vocabulary.words) == {"a", "red", "cat", "two", "dogs", "dog"}
  values, words, unknown = vocabulary.encoder().encode(tf.constant(["red\u00a0cat\u3000a"]))
  assert words.numpy().tolist() == [3] and unknown.numpy().tolist() == [0]
  assert vocabulary.decode_numpy(values) == ["red cat a"]
