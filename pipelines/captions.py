"""Captions of a class or of a face's attributes, drawn from a small grammar, and its parser.

Text as a modality needs captions to train on and a way to read a generated caption back:

  ClassCaptions       a class in words under K templates: MNIST's digits ("a handwritten
                      seven", "the digit 7", ...: `DIGITS`), Fashion-MNIST's items ("a photo
                      of a sneaker": `FASHION`), and both halves of mnist_fashion's pairs, whose
                      digit and item share the class index ("a seven beside a sneaker":
                      `DIGIT_AND_FASHION`).
  AttributeCaptions   a face from CelebA's 40 attributes, as MM-CelebA-HQ made its texts from
                      them: "a smiling young woman with eyeglasses and black hair wearing a
                      hat" (`FACES`).

The template index is the variation in wording: a pipeline draws it per example, and
`captions_graph` turns (class or attributes, template) into the caption inside a tf.data map or
a tf.function (TensorFlow ops only). `caption` is the same in Python, string for string, and
`corpus` gives the captions to build a vocabulary from (`jmvae_tf.core.text.Vocabulary.build`).

Every caption is lower case, its words [a-z0-9]+ joined by single spaces, without any
punctuation, so the vocabulary's standardisation leaves it unchanged and a caption encoded
and decoded is the same string. The parser reads this grammar back: `ClassCaptions.parse` gives
the class a caption states (-1 for a caption no template produces), `AttributeCaptions.parse`
the attributes it states, `AttributeCaptions.readable` whether it is exactly a caption of the
grammar. The parsers first lower-case a caption and collapse its whitespace (a decoded caption
has single spaces; "[UNK]" is how the vocabulary writes an unknown word).
"""

from __future__ import annotations

import re
import string
from typing import Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from pipelines.celeba_attributes import ATTRIBUTE_NAMES

# What a caption may be: lower-case words of letters and digits, single spaces between them.
CAPTION_PATTERN = re.compile(r"[a-z0-9]+( [a-z0-9]+)*")
VOWELS = "aeiou"


class CaptionError(ValueError):
  """A grammar that cannot be used (the message names what is wrong)."""


def check_caption(text: str, where: str) -> str:
  """`text` unless it holds something other than lower-case words and single spaces."""
  if not CAPTION_PATTERN.fullmatch(text):
    raise CaptionError(
      f"{where}: {text!r} is not lower-case words of letters and digits separated by single "
      "spaces (a caption must read back unchanged through the vocabulary)"
    )
  return text


def normalize(caption) -> str:
  """A caption as the parsers compare it: lower case, words separated by single spaces."""
  if isinstance(caption, bytes):
    caption = caption.decode("utf-8")
  return " ".join(str(caption).lower().split())


def captions_list(captions) -> list:
  """Python strings of captions given as strings, bytes, a numpy array or a tf.string tensor."""
  if isinstance(captions, (str, bytes)):
    raise TypeError("parse a sequence of captions, not a single string")
  if isinstance(captions, tf.Tensor):
    captions = captions.numpy()
  return [normalize(c) for c in np.asarray(captions, dtype=object).reshape(-1)]


def indices_graph(values, size: int, what: str) -> tf.Tensor:
  """`values` as int64, checked to lie in [0, size) before they are used (tf.gather would read
  zeros on a GPU for an index out of range)."""
  values = tf.cast(values, tf.int64)
  checks = [
    tf.debugging.assert_non_negative(values, message=f"a negative {what}"),
    tf.debugging.assert_less(values, tf.constant(size, tf.int64), message=f"a {what} >= {size}"),
  ]
  with tf.control_dependencies(checks):
    return tf.identity(values)


def check_index(value: int, size: int, what: str) -> int:
  value = int(value)
  if not 0 <= value < size:
    raise IndexError(f"{what} {value} is not in [0, {size})")
  return value


def article(phrase: str) -> str:
  """ "an" before a word that starts with a vowel, "a" before one that does not (the words of
  `AttributeCaptions` have no exception such as "one" or "hour")."""
  return "an" if phrase[:1] in VOWELS else "a"


def spans(needle: Tuple[str, ...], pieces: Sequence[Tuple[str, ...]]) -> bool:
  """Whether the words `needle` can be read across pieces of text put side by side: the end of
  one piece, then whole pieces, then the start of another (two pieces at least)."""
  n = len(needle)

  def rest(i: int) -> bool:  # needle[i:] as whole pieces, then the start of one
    for p in pieces:
      if len(p) >= n - i and p[: n - i] == needle[i:]:
        return True
      if len(p) < n - i and needle[i : i + len(p)] == p and rest(i + len(p)):
        return True
    return False

  return any(
    p[len(p) - j :] == needle[:j] and rest(j)
    for p in pieces
    for j in range(1, min(len(p), n - 1) + 1)
  )


# --- a class ---------------------------------------------------------------------------------
class ClassCaptions:
  """Captions of C classes under K templates: `table()[c, k]` is class c under template k.

  `forms` maps a slot name to its C words, one per class (e.g. "word": "zero" ... "nine",
  "a_word": "a zero" ... "an eight" ..., the article being part of the form so that a/an
  agree); a template names the slots it uses in braces, as str.format does ("a handwritten
  {word}", "an image of {a_numeral}"). The grammar is thus finite (C x K captions), and no
  caption may state two classes: the constructor refuses a grammar where one caption is
  produced for two classes. `parse` reads a caption as the whole of a template with each slot
  filled by the forms of one class, which is to say: it is one of the table's captions. A
  caption whose slots name different classes ("a seven beside a bag" in DIGIT_AND_FASHION), that
  misses a slot, or that has a word the template does not, is read as -1.
  """

  def __init__(self, name: str, forms: Mapping[str, Sequence[str]], templates: Sequence[str]):
    self.name = str(name)
    self.forms: Dict[str, Tuple[str, ...]] = {s: tuple(map(str, w)) for s, w in forms.items()}
    self.templates: Tuple[str, ...] = tuple(map(str, templates))
    sizes = {len(words) for words in self.forms.values()}
    if len(sizes) != 1 or 0 in sizes:
      raise CaptionError(
        f"{self.name}: every slot needs one form per class, got "
        + ", ".join(f"{s}: {len(w)}" for s, w in self.forms.items())
      )
    if not self.templates:
      raise CaptionError(f"{self.name}: no templates")
    (self.num_classes,) = sizes
    for template in self.templates:
      for _, slot, spec, conversion in string.Formatter().parse(template):
        if slot is not None and (slot not in self.forms or spec or conversion):
          raise CaptionError(
            f"{self.name}: template {template!r} has {{{slot}}}, not one of the slots "
            f"{sorted(self.forms)}"
          )
    rows = []
    for c in range(self.num_classes):
      slots = {s: words[c] for s, words in self.forms.items()}
      rows.append([t.format(**slots) for t in self.templates])
    self._table = np.array(rows, dtype=str)
    self._classes: Dict[str, int] = {}
    for (c, k), text in np.ndenumerate(self._table):
      check_caption(str(text), f"{self.name}: class {c} under template {self.templates[k]!r}")
      if self._classes.setdefault(str(text), c) != c:
        raise CaptionError(
          f"{self.name}: {str(text)!r} is a caption of class {self._classes[str(text)]} and "
          f"of class {c}"
        )

  @property
  def num_templates(self) -> int:
    return len(self.templates)

  @property
  def max_words(self) -> int:
    """The words of the longest caption."""
    return max(len(str(text).split()) for text in self._table.reshape(-1))

  def caption(self, cls: int, template: int) -> str:
    cls = check_index(cls, self.num_classes, f"{self.name}: class")
    template = check_index(template, self.num_templates, f"{self.name}: template")
    return str(self._table[cls, template])

  def table(self) -> np.ndarray:
    """Every caption, str [C, K]: class c under template k at [c, k]."""
    return self._table.copy()

  def corpus(self) -> list:
    """Every caption (class by class, each under every template)."""
    return [str(text) for text in self._table.reshape(-1)]

  def captions_graph(self, classes, templates) -> tf.Tensor:
    """Captions tf.string [B] of classes int [B] under templates int [B]: a gather over the
    table (usable in a tf.data map, a tf.function or eagerly)."""
    classes = indices_graph(classes, self.num_classes, f"{self.name} class")
    templates = indices_graph(templates, self.num_templates, f"{self.name} template")
    flat = tf.constant(self._table.reshape(-1), tf.string)
    return tf.gather(flat, classes * self.num_templates + templates)

  def parse(self, captions: Sequence[str]) -> np.ndarray:
    """The class each caption states, int64 [N]; -1 for a caption that is no template of one
    class (an empty one, a stray or missing word, two different classes)."""
    return np.array([self._classes.get(c, -1) for c in captions_list(captions)], np.int64)


DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_FORMS = {
  "word": DIGIT_WORDS,
  "numeral": tuple(str(d) for d in range(10)),
  # "a one" (the sound w), "an eight"; the numerals are read as their words.
  "a_word": tuple(f"{'an' if w == 'eight' else 'a'} {w}" for w in DIGIT_WORDS),
  "a_numeral": tuple(f"{'an' if d == 8 else 'a'} {d}" for d in range(10)),
}
# Fashion-MNIST's classes (pipelines.mnist_fashion.FASHION_CLASSES) in words without
# punctuation: T-shirt/top is "top", so that "shirt" (class 6) names one class only.
FASHION_WORDS = (
  "top",
  "trousers",
  "pullover",
  "dress",
  "coat",
  "sandal",
  "shirt",
  "sneaker",
  "bag",
  "ankle boot",
)
FASHION_FORMS = {
  "item": FASHION_WORDS,
  "a_item": tuple(
    "a pair of trousers" if w == "trousers" else f"{article(w)} {w}" for w in FASHION_WORDS
  ),
}
DIGIT_TEMPLATES = (
  "a handwritten {word}",
  "the digit {numeral}",
  "the number {word}",
  "a handwritten digit {word}",
  "an image of {a_numeral}",
  "{word}",
  "a picture of {a_word}",
)
FASHION_TEMPLATES = (
  "{a_item}",
  "a photo of {a_item}",
  "an image of {a_item}",
  "a picture of {a_item}",
  "the {item}",
  "a product photo of {a_item}",
)
DIGIT_AND_FASHION_TEMPLATES = (
  "{a_word} beside {a_item}",
  "the digit {numeral} and {a_item}",
  "a handwritten {word} next to {a_item}",
  "{a_item} and the number {word}",
  "{a_numeral} with {a_item}",
  "the digit {word} beside the {item}",
)

DIGITS = ClassCaptions("digits", DIGIT_FORMS, DIGIT_TEMPLATES)
FASHION = ClassCaptions("fashion", FASHION_FORMS, FASHION_TEMPLATES)
DIGIT_AND_FASHION = ClassCaptions(
  "digit_and_fashion", {**DIGIT_FORMS, **FASHION_FORMS}, DIGIT_AND_FASHION_TEMPLATES
)


# --- a face's attributes ---------------------------------------------------------------------
# Where each CelebA attribute goes in a caption and its words, in the caption's order:
# adjectives before the noun, features after "with", clothing after "wearing". Male is the noun
# ("man" or "woman"). A phrase is matched by its words without the leading article (its core),
# and no core occurs inside another phrase or the templates' words (checked below).
ADJECTIVES = (
  ("Blurry", "blurry"),
  ("Attractive", "attractive"),
  ("Smiling", "smiling"),
  ("Chubby", "chubby"),
  ("Bald", "bald"),
  ("Young", "young"),
)
FEATURES = (
  ("Eyeglasses", "eyeglasses"),
  ("Black_Hair", "black hair"),
  ("Blond_Hair", "blond hair"),
  ("Brown_Hair", "brown hair"),
  ("Gray_Hair", "gray hair"),
  ("Straight_Hair", "straight hair"),
  ("Wavy_Hair", "wavy hair"),
  ("Bangs", "bangs"),
  ("Receding_Hairline", "a receding hairline"),
  ("5_o_Clock_Shadow", "stubble"),
  ("Mustache", "a mustache"),
  ("Goatee", "a goatee"),
  ("Sideburns", "sideburns"),
  ("No_Beard", "no beard"),
  ("Oval_Face", "an oval face"),
  ("High_Cheekbones", "high cheekbones"),
  ("Double_Chin", "a double chin"),
  ("Pale_Skin", "pale skin"),
  ("Rosy_Cheeks", "rosy cheeks"),
  ("Heavy_Makeup", "heavy makeup"),
  ("Arched_Eyebrows", "arched eyebrows"),
  ("Bushy_Eyebrows", "bushy eyebrows"),
  ("Narrow_Eyes", "narrow eyes"),
  ("Bags_Under_Eyes", "bags under the eyes"),
  ("Big_Nose", "a big nose"),
  ("Pointy_Nose", "a pointy nose"),
  ("Big_Lips", "big lips"),
  ("Mouth_Slightly_Open", "a slightly open mouth"),
)
WEARING = (
  ("Wearing_Hat", "a hat"),
  ("Wearing_Earrings", "earrings"),
  ("Wearing_Necklace", "a necklace"),
  ("Wearing_Necktie", "a necktie"),
  ("Wearing_Lipstick", "lipstick"),
)
MALE, MAN, WOMAN, PERSON = "Male", "man", "woman", "person"


class AttributeTemplate(NamedTuple):
  """One wording of a face's caption, e.g. ("this is", "who has", "and is wearing", "who is
  wearing"): "this is a man who has a goatee and is wearing a hat"."""

  opening: str  # before the article ("" for none)
  features: str  # before the features
  wearing_after: str  # before the clothing, after features
  wearing_alone: str  # before the clothing, when no feature is mentioned


ATTRIBUTE_TEMPLATES = (
  AttributeTemplate("", "with", "wearing", "wearing"),
  AttributeTemplate("a photo of", "with", "wearing", "wearing"),
  AttributeTemplate("this is", "who has", "and is wearing", "who is wearing"),
  AttributeTemplate("a portrait of", "with", "and wearing", "wearing"),
)


def core(phrase: str) -> str:
  """A phrase's words without its leading article ("a big nose" -> "big nose")."""
  first, _, rest = phrase.partition(" ")
  return rest if first in ("a", "an") and rest else phrase


class AttributeCaptions:
  """Captions of faces from their attributes (`names`, a subset of CelebA's in any order):

    [opening] a/an [adjectives] man|woman [with F1 and F2 ...] [wearing W1 and W2 ...]

  e.g. "a photo of a smiling young woman with eyeglasses and black hair wearing a hat and
  earrings". Each attribute that is present (value > 0) is mentioned, and nothing else: Male
  is the noun, "man" when present and "woman" when absent (the attribute says both; "person"
  when `names` has no Male); an absent attribute is not mentioned. The phrases keep the order
  of ADJECTIVES, FEATURES and WEARING; the article agrees with the word after it ("an
  attractive man"); the template (ATTRIBUTE_TEMPLATES) picks the opening and the connectives.

  Parsing: an attribute is stated when its phrase's words, without a leading article, occur in
  the caption as whole words, anywhere (the constructor checks that no phrase can be read
  inside another or across two), Male by "man" or "woman". Stray words are left unread, so a
  caption a model got partly wrong still counts for what it does state ("a smiling [UNK] with
  bangs" states Smiling and Bangs, and Male as 0); `readable` says whether a caption is exactly
  one the grammar produces.
  """

  def __init__(
    self,
    names: Sequence[str] = ATTRIBUTE_NAMES,
    templates: Sequence[AttributeTemplate] = ATTRIBUTE_TEMPLATES,
  ):
    self.names: Tuple[str, ...] = tuple(map(str, names))
    self.templates: Tuple[AttributeTemplate, ...] = tuple(AttributeTemplate(*t) for t in templates)
    if not self.templates:
      raise CaptionError("no templates")
    column = {n: i for i, n in enumerate(self.names)}
    if len(column) != len(self.names):
      raise CaptionError(f"attribute names repeat: {list(self.names)}")
    known = {n for part in (ADJECTIVES, FEATURES, WEARING) for n, _ in part} | {MALE}
    unknown = [n for n in self.names if n not in known]
    if unknown:
      raise CaptionError(f"no caption phrase for the attribute(s) {unknown}")

    def part(phrases):
      return tuple((column[n], words) for n, words in phrases if n in column)

    self._adjectives, self._features, self._wearing = map(part, (ADJECTIVES, FEATURES, WEARING))
    self._male: Optional[int] = column.get(MALE)
    self._cores = tuple(
      (c, core(words)) for c, words in self._adjectives + self._features + self._wearing
    )
    self._check_grammar()

  def _check_grammar(self) -> None:
    """Every word a caption can hold is plain, and no core (nor "man", "woman") occurs in any
    caption but as its own phrase: not inside another phrase or a template's words, nor across
    the pieces a caption is made of. The parse of every caption of the grammar is thus exact."""
    phrases = [w for _, w in self._adjectives + self._features + self._wearing]
    phrases += [MAN, WOMAN, PERSON]
    fixed = [text for t in self.templates for text in t if text] + ["and", "a", "an"]
    for text in phrases + fixed:
      check_caption(text, "a face caption's words")
    pieces = [tuple(p.split()) for p in phrases + fixed]
    needles = [(self.names[c], words) for c, words in self._cores]
    needles += [(MALE, MAN), (MALE, WOMAN)]
    for name, words in needles:
      inside = [p for p in phrases + fixed if f" {words} " in f" {p} " and core(p) != words]
      if inside or spans(tuple(words.split()), pieces):
        where = f"in {inside[0]!r}" if inside else "across the pieces of a caption"
        raise CaptionError(f"{name}'s phrase {words!r} can be read {where}")

  @property
  def num_attributes(self) -> int:
    return len(self.names)

  @property
  def num_templates(self) -> int:
    return len(self.templates)

  @property
  def max_words(self) -> int:
    """The words of the longest caption: every attribute present, the longest template."""
    everything = np.ones([self.num_attributes], np.float32)
    return max(len(self.caption(everything, t).split()) for t in range(self.num_templates))

  def _present(self, attributes) -> np.ndarray:
    present = np.asarray(attributes).reshape(-1) > 0
    if present.shape != (self.num_attributes,):
      raise CaptionError(
        f"a face has {self.num_attributes} attributes, got {np.shape(attributes)} values"
      )
    return present

  def caption(self, attributes, template: int) -> str:
    """The caption of one face's attributes [A] ({-1, 1} or {0, 1}: > 0 is present) under
    template `template`."""
    present = self._present(attributes)
    template = check_index(template, self.num_templates, "a face caption's template")
    opening, with_, wearing_after, wearing_alone = self.templates[template]
    noun = PERSON if self._male is None else (MAN if present[self._male] else WOMAN)
    phrase = " ".join([w for c, w in self._adjectives if present[c]] + [noun])
    text = (f"{opening} " if opening else "") + f"{article(phrase)} {phrase}"
    features = [w for c, w in self._features if present[c]]
    if features:
      text += f" {with_} " + " and ".join(features)
    wearing = [w for c, w in self._wearing if present[c]]
    if wearing:
      text += f" {wearing_after if features else wearing_alone} " + " and ".join(wearing)
    return text

  def corpus(self, attributes: np.ndarray, templates: np.ndarray) -> list:
    """The captions of faces' attributes [N, A] under templates [N] (e.g. to build a
    vocabulary from)."""
    attributes = np.asarray(attributes)
    templates = np.asarray(templates).reshape(-1)
    if attributes.ndim != 2 or len(attributes) != len(templates):
      raise CaptionError(
        f"attributes [N, A] and templates [N] needed, got {attributes.shape} and {templates.shape}"
      )
    return [self.caption(a, t) for a, t in zip(attributes, templates)]

  def captions_graph(self, attributes, templates) -> tf.Tensor:
    """Captions tf.string [B] of faces' attributes [B, A] (> 0 is present) under templates
    int [B], with TensorFlow's string ops (a tf.data map, a tf.function or eagerly); equal to
    `caption` row by row."""
    attributes = tf.convert_to_tensor(attributes)
    attributes.shape.with_rank(2)[1:].assert_is_compatible_with([self.num_attributes])
    present = tf.greater(attributes, tf.zeros([], attributes.dtype))
    templates = indices_graph(templates, self.num_templates, "face caption template")

    def listed(part, separator):
      """The present phrases of `part` joined by `separator` [B], and whether any is [B]."""
      columns = tf.constant([c for c, _ in part], tf.int32, shape=[len(part)])
      mask = tf.gather(present, columns, axis=1)
      words = tf.broadcast_to(tf.constant([w for _, w in part], tf.string), tf.shape(mask))
      joined = tf.strings.reduce_join(
        tf.ragged.boolean_mask(words, mask), axis=-1, separator=separator
      )
      return joined, tf.reduce_any(mask, axis=-1)

    def per_template(i):
      return tf.gather(tf.constant([t[i] for t in self.templates], tf.string), templates)

    adjectives, any_adjective = listed(self._adjectives, " ")
    if self._male is None:
      noun = tf.fill(tf.shape(templates), PERSON)
    else:
      noun = tf.where(present[:, self._male], MAN, WOMAN)
    phrase = tf.where(any_adjective, tf.strings.join([adjectives, noun], " "), noun)
    an = tf.strings.regex_full_match(phrase, f"[{VOWELS}].*")
    opening = per_template(0)
    text = tf.strings.join(
      [
        tf.where(tf.equal(opening, ""), "", tf.strings.join([opening, " "])),
        tf.where(an, "an ", "a "),
        phrase,
      ]
    )
    features, any_feature = listed(self._features, " and ")
    text = tf.where(any_feature, tf.strings.join([text, per_template(1), features], " "), text)
    wearing, any_wearing = listed(self._wearing, " and ")
    connective = tf.where(any_feature, per_template(2), per_template(3))
    return tf.where(any_wearing, tf.strings.join([text, connective, wearing], " "), text)

  def parse(self, captions: Sequence[str]) -> np.ndarray:
    """The attributes each caption states, float32 [N, A]: 1 for one it mentions, -1 for one it
    does not; Male 1 for "man", -1 for "woman", 0 for neither or both (so that a caption
    without its noun is never right about Male). Words outside the grammar are ignored."""
    texts = captions_list(captions)
    parsed = np.full([len(texts), self.num_attributes], -1, np.float32)
    for i, text in enumerate(texts):
      padded = f" {text} "
      for c, words in self._cores:
        if f" {words} " in padded:
          parsed[i, c] = 1
      if self._male is not None:
        man, woman = f" {MAN} " in padded, f" {WOMAN} " in padded
        parsed[i, self._male] = 0 if man == woman else (1 if man else -1)
    return parsed

  def readable(self, captions: Sequence[str]) -> np.ndarray:
    """bool [N]: whether each caption is exactly one the grammar produces (under some
    template), after lower-casing and collapsing whitespace."""
    texts = captions_list(captions)
    result = np.zeros([len(texts)], bool)
    for i, (text, attributes) in enumerate(zip(texts, self.parse(texts))):
      if self._male is not None and attributes[self._male] == 0:
        continue
      result[i] = any(self.caption(attributes, t) == text for t in range(self.num_templates))
    return result


FACES = AttributeCaptions(ATTRIBUTE_NAMES)
