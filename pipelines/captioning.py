"""Captions as a modality of the built-in data sets (`--data_options=captions=...`).

No caption corpus is at hand for MNIST, Fashion-MNIST or CelebA: their captions are made from
what the data says, the class or the 40 attributes, by the small grammars of
`pipelines.captions` (as MM-CelebA-HQ made its texts from CelebA's attributes). Each figure
or report of these captions says so.

Options every such data set takes:
  captions=instead      the label (or attributes) modality becomes a caption
  captions=added        a caption modality next to the others
  caption_tokens=T      positions of a caption, its end-of-sentence included (default: the
                        grammar's longest caption and its end); longer captions are cut to
                        T - 1 words, counted and said once
  caption_vocabulary=V  at most V tokens (the two reserved ones and the V - 2 most frequent
                        words; the others read as unknown)

A caption is drawn afresh for each example each epoch (its template, a pure function of
(seed, epoch, step), as the rest of the pipeline), and fixed by the seed for evaluation; the
vocabulary is built from the training captions with Keras' TextVectorization
(`jmvae_tf.core.text.Vocabulary`) and becomes the modality's, so run.json records it.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from jmvae_tf.core.data import DataError
from jmvae_tf.core.files import warn_once
from jmvae_tf.core.likelihoods import TOKENS
from jmvae_tf.core.modalities import SEQUENCE, Modality
from jmvae_tf.core.text import TextError, Vocabulary

CAPTION = "caption"  # the caption modality's name
MODES = ("instead", "added")
OPTIONS: Dict[str, Sequence[str]] = {
  "captions": MODES,
  "caption_tokens": (),
  "caption_vocabulary": (),
}
MAX_TOKENS_LIMIT = 512  # positions: beyond this a caption is a document, not this model's text
MAX_VOCABULARY_LIMIT = 1_000_000

# Separate the caption templates' random streams from the others drawn from one seed.
TRAIN_CAPTION_STREAM = 0xCA97_1011
EVAL_CAPTION_STREAM = 0xCA97_1012


@dataclasses.dataclass(frozen=True)
class CaptionOptions:
  """What `--data_options` asked of the captions: a mode of MODES, and the limits (None: the
  default)."""

  mode: str
  max_tokens: Optional[int] = None
  max_vocabulary: Optional[int] = None

  @property
  def replaces_labels(self) -> bool:
    return self.mode == "instead"


def _whole(name: str, key: str, value: str, low: int, high: int) -> int:
  try:
    number = int(value)
  except ValueError:
    number = None
  if number is None or not low <= number <= high:
    raise DataError(
      f"--data_options: {key}={value!r} for {name} is out of range; it must be a whole number "
      f"in [{low}, {high}]"
    )
  return number


def take_options(name: str, options: Dict[str, str]) -> Tuple[Optional[CaptionOptions], Dict]:
  """The caption options of `options` (checked: a DataError naming a bad one) and the options
  left for the data set itself."""
  own = {k: v for k, v in options.items() if k in OPTIONS}
  rest = {k: v for k, v in options.items() if k not in OPTIONS}
  if not own:
    return None, rest
  mode = own.get("captions")
  if mode is None:
    raise DataError(
      f"--data_options: {', '.join(sorted(own))} for {name} need captions={'|'.join(MODES)}"
    )
  if mode not in MODES:
    raise DataError(f"--data_options: captions={mode!r} for {name}; choose from {list(MODES)}")
  tokens = own.get("caption_tokens")
  size = own.get("caption_vocabulary")
  return (
    CaptionOptions(
      mode,
      None if tokens is None else _whole(name, "caption_tokens", tokens, 2, MAX_TOKENS_LIMIT),
      None if size is None else _whole(name, "caption_vocabulary", size, 3, MAX_VOCABULARY_LIMIT),
    ),
    rest,
  )


def caption_modality(vocabulary: Vocabulary, name: str = CAPTION) -> Modality:
  return Modality(name, TOKENS, vocabulary.shape, SEQUENCE, vocabulary.tokens)


class Captioner:
  """Captions of a data set's examples by a grammar (`pipelines.captions`): the vocabulary
  built from the training captions, the tokens of a batch's captions drawn in the graph, and
  the grammar's parser that reads a generated caption back.

  `grammar` has `num_templates`, `captions_graph(what [B, ...], templates [B]) -> tf.string
  [B]` and `parse(captions)`; `corpus` are the training captions the vocabulary is built from.
  """

  def __init__(self, data_name: str, grammar, options: CaptionOptions, corpus: Sequence[str]):
    self.grammar, self.options = grammar, options
    corpus = np.asarray(corpus, dtype=str)
    words = np.char.count(corpus, " ") + 1  # the grammars' captions: words single-spaced
    longest = int(words.max())
    max_tokens = options.max_tokens or longest + 1
    try:
      self.vocabulary = Vocabulary.build(corpus, max_tokens, options.max_vocabulary)
    except TextError as e:
      raise DataError(f"{data_name} captions: {e}") from None
    self.encoder = self.vocabulary.encoder()
    if longest > max_tokens - 1:
      cut = int(np.sum(words > max_tokens - 1))
      warn_once(
        f"{data_name} captions: {cut} of {len(corpus)} training captions have more than "
        f"{max_tokens - 1} words (caption_tokens={max_tokens}, its end included); they are cut "
        f"to {max_tokens - 1}, the longest has {longest}"
      )

  @property
  def modality(self) -> Modality:
    return caption_modality(self.vocabulary)

  def adopt(self, vocabulary: Vocabulary) -> None:
    """Tokenises with `vocabulary` (a run's) from now on: the grammar's captions are the same,
    only their tokens follow the run's columns."""
    self.vocabulary, self.encoder = vocabulary, vocabulary.encoder()

  def tokens(self, what: tf.Tensor, templates: tf.Tensor) -> tf.Tensor:
    """The one-hot tokens [B, T, V] of the captions of `what` (classes or attributes) under
    `templates` [B]."""
    return self.encoder(self.grammar.captions_graph(what, templates))

  def train_templates(self, count, epoch_seed: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
    """The templates of a training batch: a pure function of (seed, epoch, step)."""
    seed = tf.random.experimental.stateless_fold_in(
      tf.random.experimental.stateless_fold_in(epoch_seed, TRAIN_CAPTION_STREAM), step
    )
    return tf.random.stateless_uniform([count], seed, 0, self.grammar.num_templates, dtype=tf.int32)

  def eval_templates(self, count: int, seed: int) -> tf.Tensor:
    """The templates of a held-out split's examples [count], each fixed by (seed, its
    index), so every read and batch size sees the same captions."""
    return tf.random.stateless_uniform(
      [count],
      tf.constant([int(seed), EVAL_CAPTION_STREAM], tf.int64),
      0,
      self.grammar.num_templates,
      dtype=tf.int32,
    )

  def held_out_texts(self, what: np.ndarray, split_size: int, seed: int = 0) -> np.ndarray:
    """The captions (str [N]) of the first examples of a held-out split (`what`: their classes
    or attributes; `split_size`: the split's examples), as `eval_dataset(split, seed)` draws
    them: the Projector's metadata."""
    templates = self.eval_templates(split_size, seed)[: len(what)]
    dtype = tf.float32 if np.ndim(what) > 1 else tf.int32
    return self.grammar.captions_graph(tf.constant(what, dtype), templates).numpy().astype(str)

  def read(self, texts: Sequence[str]) -> np.ndarray:
    """What each caption states, as the data set's labels are (the grammar's parser)."""
    return self.grammar.parse(list(texts))


class Captioned:
  """What the built-in data sets with the caption options share (put before `DataSet` in
  their bases): their `captioner` (None without captions), the modalities with the caption
  (`captioned`), and the `DataSet` hooks a caption needs. `labels_modality` is the modality
  `captions=instead` replaces."""

  captioner: Optional[Captioner] = None
  labels_modality = "label"

  def captioned(self, modalities: Tuple[Modality, ...]) -> Tuple[Modality, ...]:
    """`modalities` (the data set's own), the labels one left out where captions replace it,
    then the caption; as they are without captions."""
    if self.captioner is None:
      return modalities
    replaced = self.labels_modality if self.captioner.options.replaces_labels else None
    return tuple(m for m in modalities if m.name != replaced) + (self.captioner.modality,)

  def use_vocabulary(self, modality: Modality) -> bool:
    if self.captioner is None or modality.name != CAPTION or modality.text is None:
      return False
    self.captioner.adopt(modality.text)
    return True

  def read_text(self, modality: str, texts: Sequence[str]) -> Optional[np.ndarray]:
    if self.captioner is None or modality != CAPTION:
      return None
    return self.captioner.read(texts)


def with_caption(batch: dict, captioner: Captioner, tokens: tf.Tensor, label: str = "label"):
  """`batch` with its captions' tokens, without its `label` modality where they replace it."""
  batch = {**batch, CAPTION: tokens}
  if captioner.options.replaces_labels:
    del batch[label]
  return batch


def every_caption(grammar, what: np.ndarray, chunk: int = 65_536) -> np.ndarray:
  """The captions of every row of `what` (classes or attributes) under every template of
  `grammar`, made in the graph as training makes them (str [N * K])."""
  out = []
  k = grammar.num_templates
  for start in range(0, len(what), chunk):
    part = np.asarray(what[start : start + chunk])
    dtype = np.float32 if part.ndim > 1 else np.int32  # attributes, or classes
    rows = tf.constant(np.repeat(part, k, axis=0).astype(dtype))
    templates = tf.constant(np.tile(np.arange(k, dtype=np.int32), len(part)))
    out.append(grammar.captions_graph(rows, templates).numpy().astype(str))
  return np.concatenate(out)
