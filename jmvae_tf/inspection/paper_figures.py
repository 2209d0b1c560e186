"""The paper's figures drawn from trained models into a directory, as PNG files and TensorBoard
images: MNIST's 3, 4 and 5 (and Figure 3's analogue for three or more modalities), the faces'
6, 7, 8 and 9. What runners.figures does with its flags, callable with plain arguments
(`draw_figures`); the values and drawings themselves are `jmvae_tf.inspection.figures`'.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from jmvae_tf.core import files
from jmvae_tf.core.modalities import IMAGE
from jmvae_tf.inspection import editing, figures

MNIST_FIGURES = ("3", "4", "5")
FACE_FIGURES = ("6", "7", "8", "9")


def increasing_steps(name: str, values) -> list:
  """`values` as non-negative increasing integers, or a ValueError naming `name`."""
  try:
    out = [int(v) for v in values]
  except ValueError:
    raise ValueError(f"{name} must be integers, got {values}") from None
  if not out or out != sorted(out) or out[0] < 0:
    raise ValueError(f"{name} must be non-negative and increasing, got {values}")
  return out


@dataclasses.dataclass(frozen=True)
class FigureSettings:
  """What the figures show (runners.figures' flags of the same names)."""

  steps: Tuple[int, ...] = (0, 1, 2, 5, 10, 100)  # Figures 3 and 6: a row each
  curve_steps: Tuple[int, ...] = (0, 1, 2, 5, 10, 20, 50, 100)  # Figures 4 and 7: the x axis
  curve_num_test: int = 1000  # Figures 4 and 7: test examples per point
  num_samples: int = 10  # Figures 4 and 7: N of the eq 11 bound
  latent_num_test: int = 10000  # Figure 5: test examples plotted
  batch_size: int = 500
  seed: int = 0
  num_faces: int = 8  # Figures 6 and 9: test faces shown
  face_attributes: Tuple[str, ...] = (
    "Smiling",
    "Eyeglasses",
    "Wearing_Hat",
    "Blond_Hair",
    "Male",
    "-Young",
  )  # Figure 8: set to +-2, a column each
  base_face: int = 0  # Figure 8: the test face whose attributes are the base
  num_random: int = 6  # Figure 8: random faces per attribute
  zeta: float = 0.6  # Figure 8: variance of eps
  face_edits: Tuple[str, ...] = (
    "+Smiling",
    "-Smiling",
    "+Eyeglasses",
    "+Wearing_Hat",
    "+Blond_Hair",
    "+Male",
  )  # Figure 9: an edit per column
  edit_strength: float = 1.0  # Figure 9: the value an edited attribute gets

  def __post_init__(self):
    object.__setattr__(self, "steps", tuple(increasing_steps("steps", self.steps)))
    object.__setattr__(
      self, "curve_steps", tuple(increasing_steps("curve_steps", self.curve_steps))
    )
    if self.num_faces < 1 or self.num_random < 0 or self.zeta < 0 or self.base_face < 0:
      raise ValueError("num_faces must be >= 1 and num_random, zeta, base_face >= 0")
    for name in ("curve_num_test", "num_samples", "latent_num_test", "batch_size"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

  def edits(self, attribute_names: Sequence[str]):
    """(Figure 8's (name, column, +-2) choices, Figure 9's editing.Edit list), or an EditError
    naming an unknown attribute and listing those of the data set."""
    chosen = [
      (e.name, e.index, e.value)
      for e in editing.parse_edits(
        ",".join(self.face_attributes), attribute_names, figures.FIGURE8_VALUE
      )
    ]
    edits = [
      editing.parse_edits(item, attribute_names, self.edit_strength)[0] for item in self.face_edits
    ]
    return chosen, edits


def with_classes(modalities) -> bool:
  """Whether the data set's examples have a class (Figures 3-5), rather than attributes (6-9)."""
  return any(m.likelihood.classes(m.shape) is not None for m in modalities)


class FigureWriter:
  """Saves each figure as OUTPUT_DIR/<name>.png and as a TensorBoard image under
  OUTPUT_DIR/logs, and each curve's values as figure<N>.json; says what it wrote."""

  def __init__(self, output_dir: str, log: Callable[[str], None] = print):
    import matplotlib  # pylint: disable=g-import-not-at-top

    matplotlib.use("Agg")
    os.makedirs(output_dir, exist_ok=True)
    self.output_dir, self.log = output_dir, log
    self.writer = tf.summary.create_file_writer(os.path.join(output_dir, "logs"))

  def save(self, fig, name: str):
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

    path = os.path.join(self.output_dir, f"{name}.png")
    figures.save_figure(fig, path, self.writer, name.replace("_", "/", 1))
    plt.close(fig)
    self.log(f"wrote {path}")

  def curves(self, figure: str, curves, steps, digits: int, **record):
    """Figure `figure`'s log-likelihood-against-K curves, a line each, and figure<N>.json."""
    for name, by_model in curves.items():
      for title, values in by_model.items():
        self.log(
          f"figure {figure}: {title} {name}: "
          + ", ".join(f"K={k}: {v:.{digits}f}" for k, v in zip(steps, values))
        )
    files.write_whole(
      os.path.join(self.output_dir, f"figure{figure}.json"),
      json.dumps({"steps": list(steps), **record, "curves": curves}, indent=2),
      files.OUTPUT_KEPT,
    )

  def close(self):
    self.writer.flush()


def draw_figures(
  models: Dict[str, Tuple[str, object]],
  data,
  output_dir: str,
  which: Sequence[str] = MNIST_FIGURES,
  latent2: Optional[Dict[str, object]] = None,
  settings: FigureSettings = FigureSettings(),
  log: Callable[[str], None] = print,
) -> None:
  """Draws the figures `which` of the trained `models` ({title: (file key, model)}, all on
  `data`, a DataSet) into `output_dir`; `latent2` ({title: model} with a 2-D latent) draws
  Figure 5. Figures 3-5 are for data with a class (MNIST's label), 6-9 for faces and their
  attributes (the attribute names are the data set's metadata columns)."""
  out = FigureWriter(output_dir, log)
  # x: the (first) image, w: the class (MNIST's label).
  x = next(m for m in data.modalities if m.family == IMAGE)
  w = next((m for m in data.modalities if m.likelihood.classes(m.shape) is not None), None)
  if set(which) & set(FACE_FIGURES):
    for _, model in models.values():
      figures.face_modalities(model)  # EditError: not a faces-and-attributes model
    draw_face_figures(data, models, which, settings, out)
  if "3" in which and len(data.modalities) > 2:
    draw_subset_figures(data, models, settings, out)
  elif "3" in which:
    classes = w.likelihood.classes(w.shape)  # one column per class of w
    for title, (key, model) in models.items():
      row_names, rows = figures.figure3_rows(
        model, {w.name: tf.constant(classes)}, x.name, settings.steps, settings.seed
      )
      out.save(
        figures.draw_figure3(
          rows,
          row_names,
          list(range(len(classes))),
          f"Figure 3: {title}, {x.name} from {w.name} 0-{len(classes) - 1} by "
          "iterative-sampling steps",
          x.likelihood.picture_range(np.concatenate(rows)),
        ),
        f"figure3_{key}",
      )
  if "4" in which:
    steps = list(settings.curve_steps)
    dataset = data.eval_dataset("test", settings.batch_size, num_examples=settings.curve_num_test)
    curves = figures.figure4_curves(
      {t: m for t, (_, m) in models.items()}, dataset, steps, settings.num_samples, settings.seed
    )
    out.save(figures.draw_figure4(curves, steps), "figure4")
    out.curves("4", curves, steps, 3)
  if "5" in which and latent2:
    n = settings.latent_num_test
    dataset = data.eval_dataset("test", settings.batch_size, num_examples=n)
    panels = {
      title: figures.figure5_latents(model, dataset, settings.seed, given=(w.name,))
      for title, model in latent2.items()
    }
    out.save(figures.draw_figure5(panels, data.classes("test", n)), "figure5")
  out.close()


def draw_face_figures(data, models, which, settings: FigureSettings, out: FigureWriter):
  """Figures 6-9 for each model in `models` ({title: (key, model)})."""
  split = data.held_out_split()
  n = settings.num_faces
  faces = next(iter(data.eval_dataset(split, n, num_examples=n)))
  first = next(iter(models.values()))[1]
  image_name, _ = figures.face_modalities(first)
  image_spec = next(m for m in data.modalities if m.name == image_name)
  value_range = image_spec.likelihood.picture_range(faces[image_name])
  if "6" in which:
    for title, (key, model) in models.items():
      image, attributes = figures.face_modalities(model)
      row_names, rows = figures.figure6_rows(
        model, {attributes: faces[attributes]}, settings.steps, settings.seed
      )
      out.save(
        figures.draw_figure6(
          faces[image].numpy(),
          rows,
          row_names,
          f"Figure 6: {title}, faces from the attributes of {n} test faces",
          value_range,
        ),
        f"figure6_{key}",
      )
  if "7" in which:
    steps = list(settings.curve_steps)
    count = min(settings.curve_num_test, data.num_examples(split))
    dataset = data.eval_dataset(split, settings.batch_size, num_examples=count)
    curves = figures.figure7_curves(
      {t: m for t, (_, m) in models.items()},
      dataset,
      steps,
      settings.num_samples,
      settings.seed,
      figures.face_directions(first),
    )
    out.save(figures.draw_figure7(curves, steps), "figure7")
    out.curves("7", curves, steps, 1, num_examples=count)
  chosen, edits = settings.edits(list(data.metadata("test", 1)))
  # JMVAE infers z from w by iterative sampling: as many steps as Figure 6's last row.
  num_steps = max(settings.steps)
  if "8" in which:
    base_n = settings.base_face + 1
    base = next(iter(data.eval_dataset(split, base_n, num_examples=base_n)))
    for title, (key, model) in models.items():
      _, attributes = figures.face_modalities(model)
      panels = figures.figure8_faces(
        model,
        base[attributes].numpy()[settings.base_face],
        chosen,
        settings.num_random,
        settings.seed,
        settings.zeta,
        num_steps=num_steps,
      )
      out.save(
        figures.draw_figure8a(
          panels,
          f"Figure 8a: {title}, test face {settings.base_face}'s attributes, one set to +-2",
          value_range,
        ),
        f"figure8a_{key}",
      )
      out.save(figures.draw_figure8b(panels, f"Figure 8b: {title}, PCA of z"), f"figure8b_{key}")
  if "9" in which:
    for title, (key, model) in models.items():
      image, _ = figures.face_modalities(model)
      columns, grid = figures.figure9_grid(model, faces[image].numpy(), edits, num_steps)
      out.save(
        figures.draw_face_grid(
          grid,
          [f"face {i}" for i in range(len(grid))],
          columns,
          f"Figure 9: {title}, bi-directional editing x + x'_mean - x_mean",
          value_range,
        ),
        f"figure9_{key}",
      )


def draw_subset_figures(data, models, settings: FigureSettings, out: FigureWriter):
  """Figure 3's analogue for three or more modalities: for each image modality, one test
  example of each class (columns), and what each model generates of it from each set of the
  other modalities (rows); JMVAE and hierarchical JMVAE sample iteratively for the largest
  of `steps`."""
  n = data.num_examples("test")
  classes = data.classes("test", n)
  first = [int(np.flatnonzero(classes == c)[0]) for c in np.unique(classes)]
  batch = next(iter(data.eval_dataset("test", max(first) + 1)))
  examples = {name: tf.gather(value, first) for name, value in batch.items()}
  for title, (key, model) in models.items():
    for m in data.modalities:
      if m.family != IMAGE:
        continue
      row_names, rows = figures.figure3_from_subsets(
        model, examples, m.name, settings.seed, max(settings.steps)
      )
      out.save(
        figures.draw_figure3(
          rows,
          row_names,
          [str(c) for c in np.unique(classes)],
          f"Figure 3 for {len(data.modalities)} modalities: {title}, {m.name} from each set of "
          "the others (one test example of each class)",
          m.likelihood.picture_range(rows[0]),
        ),
        f"figure3_{m.name}_{key}",
      )
