"""What a model with a text modality writes and draws from captions, through its inference API:

  caption_rows                 Markdown tables for TensorBoard's text dashboard: per held-out
                               example, its true caption, the caption reconstructed from every
                               modality and the caption generated from each other set of
                               modalities (`jmvae_tf.training.summaries` writes them)
  captions_from_images_figure  test images, each with the caption generated from it, its true
                               caption and whether the data set's parser reads the generated
                               one as the example's class (or how many attributes it gets right)
  images_from_captions_figure  images generated from captions a person writes: the paper's
                               Figure 1 ("a smiling woman with eyeglasses" -> faces)
  write_captions               all three for a data set's test examples into a directory
                               (runners.captions)

A generated caption is the most probable word at each position of the mean of p(caption|z)
(`Vocabulary.decode`), up to the end of the sentence. The built-in data sets have no caption
corpus: their captions are made from the labels (or attributes) by a grammar
(`pipelines.captions`), and every figure and table says so with the parser's agreement with
the true labels on the real test captions.
"""

from __future__ import annotations

import os
import textwrap
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from jmvae_tf.core.modalities import IMAGE, Modality
from jmvae_tf.core.sampling import split_seed, tile_batch
from jmvae_tf.core.text import check_captions
from jmvae_tf.inspection.pictures import ITERATIVE_STEPS

Batch = Dict[str, tf.Tensor]
Read = Callable[[Sequence[str]], np.ndarray]  # captions -> classes [N] or attributes [N, A]

SOURCE = (
  "captions are made from the labels (or attributes) by a grammar; there is no caption corpus"
)
NUM_CAPTIONS = 4  # default captions of images_from_captions: the first distinct test ones
COLUMNS = 4  # examples per row of captions_from_images_figure
CAPTION_STREAM = 0x7E47  # the rows' seeds apart from the pictures' of the same seed
EMPTY = "(empty)"  # how a caption of no word is shown
RIGHT, PARTLY, WRONG = "#1a7f37", "#9a6700", "#cf222e"  # the marks' colours
GREY = "#6e7781"


class CaptionText(NamedTuple):
  """A TensorBoard text summary: its tag, its Markdown and what it shows."""

  tag: str
  text: str
  description: str


# --- which modalities ----------------------------------------------------------------------
def text_modalities(modalities: Sequence[Modality]) -> List[Modality]:
  """The modalities that are captions (with a vocabulary)."""
  return [m for m in modalities if m.vocabulary is not None]


def image_modalities(modalities: Sequence[Modality]) -> List[Modality]:
  """The modalities drawn as pictures: [H, W, 1] grey or [H, W, 3] colour images."""
  return [m for m in modalities if m.family == IMAGE and m.shape[-1] in (1, 3)]


def check_text(modalities: Sequence[Modality], where: str) -> List[Modality]:
  """The text modalities of `modalities`, or a ValueError (one line) saying `where` has none."""
  found = text_modalities(modalities)
  if not found:
    names = ", ".join(m.name for m in modalities)
    raise ValueError(
      f"{where} has no text modality (its modalities: {names}); captions need one, e.g. a run "
      "trained with --data_options=captions=instead or captions=added"
    )
  return found


def _spec(model, name: Optional[str], pick: Callable, what: str) -> Modality:
  """The model's modality `name`, or its first of `pick`'s where `name` is None."""
  specs = list(model.modality_specs)
  if name is None:
    found = pick(specs)
    if not found:
      raise ValueError(f"the model has no {what} modality ({', '.join(model.modality_names)})")
    return found[0]
  spec = next((m for m in specs if m.name == name), None)
  if spec is None or spec not in pick(specs):
    raise ValueError(f"{name!r} is not a {what} modality of the model ({model.modality_names})")
  return spec


def _steps(model, given: Sequence[str]) -> int:
  return ITERATIVE_STEPS if model.uses_iterative_sampling(given) else 0


def _check_generates(model, target: str, given: Tuple[str, ...]) -> None:
  if target not in model.generated_modalities:
    raise ValueError(
      f"the model does not generate {target} (it generates {model.generated_modalities})"
    )
  model.check_given(given)  # a ValueError saying why z cannot be inferred from them


# --- the note every output carries --------------------------------------------------------
def source_note(agreement: Optional[float] = None, num_test: int = 0, provenance: str = "") -> str:
  """Where the captions come from, the parser's agreement with the true labels on the
  `num_test` real test captions, and the data's provenance where it has one."""
  note = SOURCE[0].upper() + SOURCE[1:]
  if agreement is not None:
    note += (
      f"; the parser's agreement with the true labels on the {num_test} real test captions: "
      f"{agreement:.4f}"
    )
  if provenance:
    note += f"; data: {provenance}"
  return note + "."


# --- Markdown tables for TensorBoard -------------------------------------------------------
def _cell(caption: str) -> str:
  """A caption as a Markdown table cell (a pipe would end the cell)."""
  return caption.replace("|", "\\|") if caption else f"*{EMPTY}*"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return "\n".join(lines)


def caption_rows(model, display: Batch, seed: int = 0) -> List[CaptionText]:
  """One Markdown table (CaptionText) per generated text modality m of `model`, one row per
  held-out example of `display` (every modality, [N, ...]): its true caption, m from z the
  posterior mean given every modality, then m from one draw of z given each other set of
  modalities the model can infer z from (iterative sampling where the model imputes; smallest
  sets first). Drawn with the stateless `seed`: the same seed gives the same text every epoch.
  [] for a model that generates no text."""
  specs = {m.name: m for m in model.modality_specs}
  everything = model.modality_names
  out = []
  for index, name in enumerate(model.generated_modalities):
    vocabulary = specs[name].text
    if vocabulary is None:
      continue
    subsets = [g for g in model.inference_subsets() if name not in g]
    seeds = split_seed(tf.constant([seed, CAPTION_STREAM + index], tf.int64), 1 + len(subsets))
    columns = [vocabulary.decode_numpy(display[name])]
    header, how = ["#", f"true {name}"], []
    if model.can_infer(everything):
      steps = _steps(model, everything)
      z, _ = model.posterior(display, everything, seeds[0], steps)
      columns.append(vocabulary.decode_numpy(model.decode(z, display, names=[name])[name].mean()))
      header.append("from all, mean z")
      how.append(f"from all: z the mean of {model.describe_inference(everything, steps)}")
    for given, subset_seed in zip(subsets, seeds[1:]):
      steps = _steps(model, given)
      batch = {g: display[g] for g in given}
      mean = model.generated_mean(batch, name, given, subset_seed, steps)
      columns.append(vocabulary.decode_numpy(mean))
      header.append(f"from {', '.join(given)}")
      how.append(f"from {', '.join(given)}: one draw of {model.describe_inference(given, steps)}")
    rows = [[str(i + 1)] + [_cell(c[i]) for c in columns] for i in range(len(columns[0]))]
    description = (
      f"{name} of {len(rows)} held-out examples, a row each: the true caption, then generated "
      f"({'; '.join(how)}), each the most probable word at each position of the mean of "
      f"p({name}|z)"
    )
    out.append(
      CaptionText(
        f"{name}/generated", markdown_table(header, rows) + f"\n\n{description}.", description
      )
    )
  return out


# --- values of the figures -----------------------------------------------------------------
def captions_from_images(
  model, images: Batch, image: str, text: str, seed: int = 0
) -> Tuple[List[str], str]:
  """(the caption `text` generated from each image of `images` ({image: [N, ...]}) alone, one
  draw of z each, how z was drawn)."""
  given = (image,)
  _check_generates(model, text, given)
  steps = _steps(model, given)
  vocabulary = next(m for m in model.modality_specs if m.name == text).text
  mean = model.generated_mean(
    {image: images[image]}, text, given, tf.constant([seed, CAPTION_STREAM], tf.int64), steps
  )
  return vocabulary.decode_numpy(mean), model.describe_inference(given, steps)


def encode_captions(vocabulary, captions: Sequence[str]) -> Tuple[tf.Tensor, List[str]]:
  """(the one-hot values [N, T, V] of `captions`, each as the vocabulary reads it back: unknown
  words as [UNK], cut to T - 1 words); a ValueError naming an empty caption or one of only
  unknown words."""
  captions = [str(c) for c in captions]
  if not captions:
    raise ValueError("no captions to generate images from")
  # The message of one of only unknown words quotes it; an empty one is quoted here.
  where = [
    f"caption {i + 1}" + ("" if any(ch.isalnum() for ch in c) else f" ({c!r})")
    for i, c in enumerate(captions)
  ]
  check_captions(captions, vocabulary, where)
  values = vocabulary.encoder()(tf.constant(captions))
  return values, vocabulary.decode_numpy(values)


def images_from_captions(
  model, captions: Sequence[str], num_images: int, image: str, text: str, seed: int = 0
) -> Tuple[np.ndarray, List[str], str]:
  """(the mean of p(image|z) for `num_images` draws of z given each caption alone
  [len(captions), num_images, H, W, C], each caption as the vocabulary reads it, how z was
  drawn)."""
  if num_images < 1:
    raise ValueError(f"num_images must be at least 1, got {num_images}")
  given = (text,)
  _check_generates(model, image, given)
  vocabulary = next(m for m in model.modality_specs if m.name == text).text
  values, read = encode_captions(vocabulary, captions)
  batch = {text: values}
  steps = _steps(model, given)
  seed_infer, seed_draw = split_seed(tf.constant([seed, CAPTION_STREAM + 1], tf.int64), 2)
  layers = model.posterior_layers(batch, given, seed_infer, steps)
  z = model.latent_draws(layers, num_images, seed_draw)  # [n * B, D], sample-major
  mean = model.decode(z, tile_batch(batch, num_images), names=[image])[image].mean().numpy()
  drawn = mean.reshape((num_images, len(read)) + mean.shape[1:]).swapaxes(0, 1)
  return drawn, read, model.describe_inference(given, steps)


def verdict(read: np.ndarray, truth: np.ndarray) -> Tuple[str, float]:
  """(what the parser made of one generated caption against the example's truth, the share
  right): a class right or wrong, or how many attributes are right."""
  read, truth = np.asarray(read), np.asarray(truth)
  if truth.ndim:  # attributes
    right = int(np.sum(read == truth))
    return f"{right}/{truth.size} attributes right", right / truth.size
  if read == truth:
    return f"\u2713 read as {int(read)}, right", 1.0
  said = "no class" if read < 0 else str(int(read))
  return f"\u2717 read as {said}, true {int(truth)}", 0.0


# --- drawings ------------------------------------------------------------------------------
def _plt():
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")  # files only: no display is needed
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  return plt


def _show(ax, picture: np.ndarray, value_range: Tuple[float, float]) -> None:
  from jmvae_tf.inspection.figures import as_picture  # pylint: disable=g-import-not-at-top

  ax.imshow(as_picture(picture, value_range), cmap="gray", vmin=0, vmax=1)
  ax.set_xticks([]), ax.set_yticks([])


def _wrap(caption: str, width: int) -> List[str]:
  return textwrap.wrap(caption, width) or [EMPTY]


def _chars(inches: float, fontsize: float) -> int:
  """About how many characters of `fontsize` points fit on a line `inches` wide."""
  return max(8, int(inches * 72 / (fontsize * 0.6)))


def _line_inches(fontsize: float) -> float:
  return fontsize * 1.25 / 72


def _count_lines(pieces: Sequence[Tuple[str, str]]) -> int:
  return sum(text.count("\n") + 1 for text, _ in pieces)


def _titled(width: float, body: float, paragraphs: Sequence[str], fontsize: float = 8):
  """(a Figure `width` inches wide with the `paragraphs` wrapped as its title above a body
  `body` inches high, the top of the body as a fraction of the figure's height)."""
  plt = _plt()
  lines = [line for p in paragraphs for line in textwrap.wrap(p, _chars(width, fontsize))]
  title = 0.1 + len(lines) * _line_inches(fontsize)
  fig = plt.figure(figsize=(width, body + title))
  fig.suptitle("\n".join(lines), fontsize=fontsize, y=1.0, va="top")
  return fig, body / (body + title)


def _lines(ax, pieces: Sequence[Tuple[str, str]], fontsize: float, middle: bool = False) -> None:
  """Stacks (text, colour) pieces of wrapped lines down from the top left of `ax`, or (`middle`)
  as a block centred on its height."""
  ax.axis("off")
  line = -_count_lines(pieces) / 2 if middle else 0
  for text, colour in pieces:
    ax.annotate(
      text,
      (0, 0.5 if middle else 1),
      xycoords="axes fraction",
      xytext=(0, -line * fontsize * 1.25),
      textcoords="offset points",
      va="top",
      ha="left",
      fontsize=fontsize,
      color=colour,
    )
    line += text.count("\n") + 1


def captions_from_images_figure(
  model,
  examples: Batch,
  true_captions: Sequence[str],
  image: Optional[str] = None,
  text: Optional[str] = None,
  truth: Optional[np.ndarray] = None,
  read: Optional[Read] = None,
  note: str = source_note(),
  seed: int = 0,
  columns: int = COLUMNS,
  value_range: Optional[Tuple[float, float]] = None,
):
  """A matplotlib Figure: the images `examples[image]` ([N, H, W, C], test examples), each with
  beneath it the caption `text` generated from it alone, whether `read` (the data set's parser)
  reads that caption as the example's `truth` (classes [N] or attributes [N, A]; no mark
  without them) and, in grey, its true caption. `note` (`source_note`) says where the
  captions come from. `image`, `text`: the model's first image and text modality by default."""
  image = _spec(model, image, image_modalities, "picture-shaped image").name
  spec = _spec(model, text, text_modalities, "text")
  generated, how = captions_from_images(model, examples, image, spec.name, seed)
  pictures = np.asarray(examples[image])
  n = len(pictures)
  if len(true_captions) != n or (truth is not None and len(truth) != n):
    raise ValueError(f"{n} images but {len(true_captions)} captions and truths")
  value_range = value_range or _picture_range(model, image, pictures)
  marks, shares = [None] * n, []
  if read is not None and truth is not None:
    for i, (r, t) in enumerate(zip(np.asarray(read(generated)), np.asarray(truth))):
      marks[i], share = verdict(r, t)
      shares.append(share)

  columns = max(1, min(columns, n))
  rows = -(-n // columns)
  cell, fontsize = 1.9, 7  # inches a column, points
  width = _chars(0.78 * cell, fontsize)
  pieces = []
  for i in range(n):
    cell_pieces = [("\n".join(_wrap(generated[i], width)), "black")]
    if marks[i] is not None:
      colour = RIGHT if shares[i] == 1 else (PARTLY if shares[i] > 0 else WRONG)
      cell_pieces.append((marks[i], colour))
    cell_pieces.append(("\n".join(_wrap(f"true: {true_captions[i]}", width)), GREY))
    pieces.append(cell_pieces)
  text_heights = [
    0.05
    + _line_inches(fontsize) * max(_count_lines(p) for p in pieces[r * columns : (r + 1) * columns])
    for r in range(rows)
  ]
  ratios = [h for r in range(rows) for h in (cell * 0.8, text_heights[r])]
  summary = ""
  if shares:
    summary = (
      f"; read right: {int(sum(shares))} of {n}"
      if np.ndim(truth) == 1
      else f"; mean share of attributes right: {np.mean(shares):.2f}"
    )
  title = (
    f"{spec.name} generated from {image} alone ({how}; the most probable word at each position "
    f"of the mean of p({spec.name}|z)){summary}; grey: the true caption"
  )
  fig, top = _titled(columns * cell, sum(ratios), [title, note])
  grid = fig.add_gridspec(
    2 * rows, columns, height_ratios=ratios, hspace=0.06, wspace=0.12, top=top, bottom=0.01
  )
  for i in range(n):
    r, c = divmod(i, columns)
    _show(fig.add_subplot(grid[2 * r, c]), pictures[i], value_range)
    _lines(fig.add_subplot(grid[2 * r + 1, c]), pieces[i], fontsize)
  return fig


def images_from_captions_figure(
  model,
  captions: Sequence[str],
  num_images: int = 6,
  seed: int = 0,
  image: Optional[str] = None,
  text: Optional[str] = None,
  note: str = source_note(),
  value_range: Optional[Tuple[float, float]] = None,
):
  """A matplotlib Figure: a row per caption of `captions` (strings a person writes), its text on
  the left (and how the vocabulary reads it where that differs: unknown words, a cut) and
  `num_images` images generated from it: the mean of p(image|z), z drawn given the caption
  alone. `note` (`source_note`) says where the model's captions came from. A ValueError naming
  an empty caption or one of only unknown words."""
  image = _spec(model, image, image_modalities, "picture-shaped image").name
  spec = _spec(model, text, text_modalities, "text")
  drawn, read, how = images_from_captions(model, captions, num_images, image, spec.name, seed)
  value_range = value_range or _picture_range(model, image, drawn)

  fontsize, size, left = 8, 1.0, 2.2  # points, inches an image, inches of the text
  width = _chars(0.8 * left, fontsize)
  title = (
    f"{image} generated from each {spec.name}: {num_images} draws of {how}, the mean of "
    f"p({image}|z)"
  )
  fig, top = _titled(left + num_images * size, len(captions) * size * 1.08, [title, note])
  grid = fig.add_gridspec(
    len(captions),
    1 + num_images,
    width_ratios=[left] + [size] * num_images,
    wspace=0.08,
    hspace=0.08,
    top=top,
    bottom=0.01,
  )
  for r, caption in enumerate(captions):
    pieces = [("\n".join(_wrap(str(caption), width)), "black")]
    if read[r] != " ".join(str(caption).lower().split()):
      pieces.append(("\n".join(_wrap(f"read as: {read[r]}", width)), GREY))
    _lines(fig.add_subplot(grid[r, 0]), pieces, fontsize, middle=True)
    for c in range(num_images):
      _show(fig.add_subplot(grid[r, 1 + c]), drawn[r, c], value_range)
  return fig


def _picture_range(model, image: str, values) -> Tuple[float, float]:
  spec = next(m for m in model.modality_specs if m.name == image)
  return spec.likelihood.picture_range(values)


def save(fig, path: str) -> str:
  """Writes `fig` as a PNG at `path` (whole: a failure leaves any earlier file) and closes it."""
  from jmvae_tf.inspection.figures import save_figure  # pylint: disable=g-import-not-at-top

  try:
    save_figure(fig, path)
  finally:
    _plt().close(fig)
  return path


# --- everything for a data set, into a directory (runners.captions) ------------------------
def first_captions(data, text: str, count: int = NUM_CAPTIONS, data_seed: int = 0) -> List[str]:
  """The first `count` distinct test captions of the data set's text modality `text`, decoded."""
  vocabulary = next(m for m in data.modalities if m.name == text).text
  n = min(data.num_examples("test"), 50 * count)
  found: List[str] = []
  for batch in data.eval_dataset("test", min(n, 500), data_seed, num_examples=n):
    for caption in vocabulary.decode_numpy(batch[text]):
      if caption and caption not in found:
        found.append(caption)
    if len(found) >= count:
      break
  return found[:count]


def data_note(data, text: str, data_seed: int = 0) -> str:
  """The note of a data set's captions: made by its grammar, with its parser's agreement on the
  real test captions (`jmvae_tf.evaluation.coherence.text_readers`); captions of a data set that
  cannot read them back are its own."""
  from jmvae_tf.evaluation import coherence  # pylint: disable=g-import-not-at-top

  reader = coherence.text_readers(data, data_seed).get(text)
  if reader is None:
    note = "The captions are the data set's own (it has no parser to read generated ones back)"
    return note + (f"; data: {data.provenance}." if data.provenance else ".")
  return source_note(reader.agreement, reader.num_test, data.provenance)


def write_captions(
  model,
  data,
  output_dir: str,
  captions: Optional[Sequence[str]] = None,
  num_examples: int = 8,
  num_images: int = 6,
  seed: int = 0,
  data_seed: int = 0,
  title: str = "",
  log: Callable[[str], None] = print,
) -> List[str]:
  """Writes into `output_dir`, for the model's text modality (the captions of `data`, the data
  set it was trained on) and each image modality:

    captions_from_<image>.png   the first `num_examples` test images and the captions generated
                                from them, read by the data set's parser
    <image>_from_captions.png   `num_images` images generated from each of `captions` (default:
                                the first NUM_CAPTIONS distinct test captions)
    captions.md                 caption_rows' tables on those test examples, with the note on
                                where the captions come from and the parser's agreement

  (a model with several text modalities: <text>_captions_from_<image>.png, ...). What the model
  cannot infer or generate is left out and said. Returns the paths written; `title` heads
  captions.md (e.g. the run read)."""
  texts = check_text(model.modality_specs, "the model")
  if num_examples < 1 or num_images < 1:
    raise ValueError(
      f"num_examples and num_images must be at least 1, got {num_examples}, {num_images}"
    )
  for spec in texts:  # a bad caption is refused before anything is drawn
    if captions:
      encode_captions(spec.text, captions)
  os.makedirs(output_dir, exist_ok=True)
  examples = next(
    iter(data.eval_dataset("test", num_examples, data_seed, num_examples=num_examples))
  )
  truth = data.labels("test", num_examples)
  images = [m.name for m in image_modalities(model.modality_specs)]
  rows = caption_rows(model, examples, seed)
  written, sections = [], []

  def keep(fig, name):
    written.append(save(fig, os.path.join(output_dir, name)))
    log(f"wrote {written[-1]}")

  for spec in texts:
    text = spec.name
    note = data_note(data, text, data_seed)
    prefix = "" if len(texts) == 1 else f"{text}_"
    sections.append(note)
    sections += [f"## {row.tag}\n\n{row.text}" for row in rows if row.tag.startswith(f"{text}/")]
    for image in images:
      value_range = _picture_range(model, image, examples[image])
      name = f"{prefix}captions_from_{image}.png"
      if text in model.generated_modalities and model.can_infer((image,)):
        read = lambda t, text=text: data.read_text(text, t)
        true_captions = spec.text.decode_numpy(examples[text])
        fig = captions_from_images_figure(
          model,
          examples,
          true_captions,
          image,
          text,
          truth,
          read,
          note,
          seed,
          value_range=value_range,
        )
        keep(fig, name)
      else:
        log(f"skipping {name}: the model cannot generate {text} from {image} alone")
      name = f"{prefix}{image}_from_captions.png"
      if image in model.generated_modalities and model.can_infer((text,)):
        given = list(captions) if captions else first_captions(data, text, data_seed=data_seed)
        keep(
          images_from_captions_figure(
            model, given, num_images, seed, image, text, note, value_range
          ),
          name,
        )
      else:
        log(f"skipping {name}: the model cannot generate {image} from {text} alone")
  if not rows:
    sections.append("The model generates no caption.")
  from jmvae_tf.core.files import OUTPUT_KEPT, write_whole  # pylint: disable=g-import-not-at-top

  path = os.path.join(output_dir, "captions.md")
  heading = f"# Captions{f' of {title}' if title else ''}\n\n"
  write_whole(path, heading + "\n\n".join(sections) + "\n", OUTPUT_KEPT)
  written.append(path)
  log(f"wrote {path}")
  return written
