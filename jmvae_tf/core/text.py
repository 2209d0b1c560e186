"""Text as a modality: a caption's vocabulary, and captions to token one-hots and back.

A caption is read by Keras' own `TextVectorization` (lower case, punctuation stripped, split
on whitespace) over a vocabulary built from the training captions (`Vocabulary.build`, its
`adapt`). A `tokens` modality of shape (T, V) holds a caption as T positions of one-hot rows
over the V columns of the vocabulary:

  column 0   UNKNOWN ("[UNK]"): a word the vocabulary does not have
  column 1   EOS ("<eos>"): the end of the sentence, after the last word
  column 2+  the words, most frequent first (TextVectorization's order)

The caption's words fill the first positions, then EOS, then all-zero rows (padding, which
counts nowhere: `jmvae_tf.core.likelihoods`). A caption of more than T - 1 words is cut to
T - 1 words, so that its EOS stays (the pipelines count and say so). Decoding a generated
(T, V) value reads the most probable column at each position up to the first EOS (or the
first all-zero row) and joins the words with spaces.

The vocabulary is part of the modality (`Modality.vocabulary`): run.json records it, the run
directory holds it as a text file (one token per line), and an export carries it inside the
SavedModel, so every reader turns captions into the same tokens.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

UNKNOWN = "[UNK]"
EOS = "<eos>"
RESERVED = (UNKNOWN, EOS)
UNKNOWN_COLUMN, EOS_COLUMN = 0, 1
STANDARDIZE = "lower_and_strip_punctuation"
SPLIT = "whitespace"
MIN_TOKENS = 2  # a word and EOS


# TextVectorization splits on ASCII whitespace only: every other space (a no-break space, the
# ideographic space of Japanese text) becomes an ASCII one first, or it would glue two words.
UNICODE_SPACE = r"[\p{Z}\x{85}\x{0B}]"


def plain_spaces(captions) -> tf.Tensor:
  """`captions` (tf.string) with every Unicode space as an ASCII space."""
  return tf.strings.regex_replace(captions, UNICODE_SPACE, " ")


class TextError(ValueError):
  """A caption or a vocabulary that cannot be used (the message names it)."""


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """The V tokens of a tokens modality's columns (UNKNOWN, EOS, then the words) and its T
  positions (`max_tokens`, EOS included)."""

  tokens: Tuple[str, ...]
  max_tokens: int

  def __post_init__(self):
    tokens = tuple(str(t) for t in self.tokens)
    object.__setattr__(self, "tokens", tokens)
    object.__setattr__(self, "max_tokens", int(self.max_tokens))
    check_tokens(tokens)
    if self.max_tokens < MIN_TOKENS:
      raise TextError(
        f"a caption needs at least {MIN_TOKENS} positions (a word and {EOS}), got "
        f"max_tokens={self.max_tokens}"
      )

  @property
  def size(self) -> int:
    """V: the columns of a position (the reserved tokens and the words)."""
    return len(self.tokens)

  @property
  def words(self) -> Tuple[str, ...]:
    return self.tokens[len(RESERVED) :]

  @property
  def shape(self) -> Tuple[int, int]:
    """The (T, V) shape of the tokens modality that holds these captions."""
    return (self.max_tokens, self.size)

  @classmethod
  def build(
    cls, captions: Iterable[str], max_tokens: int, max_size: Optional[int] = None
  ) -> "Vocabulary":
    """The vocabulary of `captions` (the training captions), by TextVectorization's `adapt`:
    every word, most frequent first, or the `max_size - 2` most frequent (V = max_size)."""
    if max_size is not None and max_size < len(RESERVED) + 1:
      raise TextError(
        f"a vocabulary of {max_size} tokens has no room for a word: it needs at least "
        f"{len(RESERVED) + 1} ({UNKNOWN}, {EOS} and one word)"
      )
    captions = np.asarray(list(captions), dtype=object)
    if not captions.size:
      raise TextError("no captions to build a vocabulary from")
    layer = keras.layers.TextVectorization(
      max_tokens=max_size, standardize=STANDARDIZE, split=SPLIT, output_mode="int"
    )
    layer.adapt(plain_spaces(tf.constant(captions.astype(str))), batch_size=4096)
    words = [str(w) for w in layer.get_vocabulary()[2:]]  # after its "" and [UNK]
    if not words:
      raise TextError("the captions hold no word (after lower-casing and stripping punctuation)")
    return cls(RESERVED + tuple(words), max_tokens)

  def write(self, path) -> None:
    """One token per line, in column order (UTF-8)."""
    with open(path, "w", encoding="utf-8") as f:
      f.write("".join(f"{t}\n" for t in self.tokens))

  @classmethod
  def read(cls, path, max_tokens: int) -> "Vocabulary":
    with open(path, encoding="utf-8") as f:
      return cls(tuple(line.rstrip("\n") for line in f), max_tokens)

  # --- captions -> tokens ------------------------------------------------------------------
  def vectorizer(self) -> keras.layers.TextVectorization:
    """The Keras layer that reads captions into word ids with this vocabulary (ragged: 1 for
    an unknown word, 2 for EOS, which no caption's text can produce, 3+ the words)."""
    return keras.layers.TextVectorization(
      vocabulary=[EOS] + list(self.words), standardize=STANDARDIZE, split=SPLIT, ragged=True
    )

  def encoder(self) -> "CaptionEncoder":
    return CaptionEncoder(self)

  # --- tokens -> captions ------------------------------------------------------------------
  def decode(self, values) -> tf.Tensor:
    """Captions [B] (tf.string) of values [B, T, V] (one-hot, or probabilities: the most
    probable token of each position), read up to the first EOS or all-zero row."""
    values = tf.convert_to_tensor(values, tf.float32)
    columns = tf.argmax(values, axis=-1, output_type=tf.int32)
    present = tf.reduce_sum(values, axis=-1) > 0
    # A position is read while no EOS and no padding has come before it or at it.
    stop = tf.logical_or(tf.equal(columns, EOS_COLUMN), tf.logical_not(present))
    keep = tf.equal(tf.cumsum(tf.cast(stop, tf.int32), axis=-1), 0)
    words = tf.ragged.boolean_mask(tf.gather(tf.constant(self.tokens), columns), keep)
    return tf.strings.reduce_join(words, axis=-1, separator=" ")

  def decode_numpy(self, values) -> list:
    """`decode` as a list of Python strings."""
    return [s.decode("utf-8") for s in self.decode(values).numpy()]


class CaptionEncoder(tf.Module):
  """Captions [B] (tf.string) -> the tokens modality's one-hot values [B, T, V]; in a tf.data
  map, a tf.function or a SavedModel alike (its lookup table is a tracked resource)."""

  def __init__(self, vocabulary: Vocabulary):
    super().__init__(name="caption_encoder")
    self.vocabulary = vocabulary
    self.layer = vocabulary.vectorizer()

  def word_ids(self, captions: tf.Tensor) -> tf.RaggedTensor:
    """Each caption's words as columns (ragged [B, None]): UNKNOWN_COLUMN for an unknown word,
    2+ for the words."""
    return self.layer(plain_spaces(captions)) - 1

  def __call__(self, captions: tf.Tensor) -> tf.Tensor:
    return self.encode(captions)[0]

  def encode(self, captions: tf.Tensor):
    """(values [B, T, V] float32, words [B] int64: each caption's words before it was cut to
    T - 1, unknown [B] int64: its words the vocabulary does not have)."""
    captions = tf.convert_to_tensor(captions, tf.string)
    ids = self.word_ids(captions)
    return self.from_word_ids(ids), ids.row_lengths(), count_unknown(ids)

  def from_word_ids(self, ids: tf.RaggedTensor) -> tf.Tensor:
    length, size = self.vocabulary.shape
    kept = ids[:, : length - 1]
    eos = tf.fill([kept.nrows(), 1], tf.cast(EOS_COLUMN, kept.dtype))
    columns = tf.concat([kept, eos], axis=1)
    dense = columns.to_tensor(default_value=-1, shape=[None, length])
    return tf.one_hot(dense, size, dtype=tf.float32)  # -1 (padding) -> an all-zero row


def count_unknown(ids: tf.RaggedTensor) -> tf.Tensor:
  return tf.reduce_sum(tf.cast(tf.equal(ids, UNKNOWN_COLUMN), tf.int64), axis=-1)


def check_tokens(tokens: Sequence[str]) -> None:
  """A TextError unless `tokens` are a vocabulary's columns: the reserved ones first, then at
  least one word, none empty, repeated or holding whitespace."""
  if tuple(tokens[: len(RESERVED)]) != RESERVED:
    raise TextError(
      f"a vocabulary starts with {list(RESERVED)}, got {list(tokens[: len(RESERVED)])}"
    )
  words = tokens[len(RESERVED) :]
  if not words:
    raise TextError("a vocabulary needs at least one word after " + ", ".join(RESERVED))
  seen = set()
  for i, w in enumerate(words, start=len(RESERVED)):
    if not w or any(c.isspace() for c in w) or w in RESERVED or w in seen:
      raise TextError(
        f"vocabulary token {i} ({w!r}) must be a word: non-empty, no whitespace, not a "
        "reserved token and not repeated"
      )
    seen.add(w)


def check_captions(
  captions: Sequence[str], vocabulary: Vocabulary, where: Sequence[str]
) -> Tuple[np.ndarray, int]:
  """Reads `captions` with `vocabulary`; a TextError naming the first empty caption, or the
  first of only unknown words (`where[i]` says where caption i came from). Returns (each
  caption's words [N], how many are longer than T - 1 words)."""
  encoder = vocabulary.encoder()
  counts, unknown = [], []
  for start in range(0, len(captions), 8192):
    part = tf.constant(np.asarray(captions[start : start + 8192], dtype=object).astype(str))
    ids = encoder.word_ids(part)
    counts.append(ids.row_lengths().numpy())
    unknown.append(count_unknown(ids).numpy())
  counts = np.concatenate(counts) if counts else np.zeros([0], np.int64)
  unknown = np.concatenate(unknown) if unknown else np.zeros([0], np.int64)
  empty = np.flatnonzero(counts == 0)
  if empty.size:
    raise TextError(f"{where[empty[0]]}: the caption is empty (no word once punctuation goes)")
  only_unknown = np.flatnonzero(unknown == counts)
  if only_unknown.size:
    i = only_unknown[0]
    raise TextError(
      f"{where[i]}: the caption {captions[i]!r} has only words the vocabulary does not have"
    )
  return counts, int(np.sum(counts > vocabulary.max_tokens - 1))
