r"""The paper's figures from trained models, as PNG files and TensorBoard images: MNIST's 3, 4
and 5, and the faces' (CelebA family) 6, 7, 8 and 9.

  python -m runners.figures --data_dir=../shared/data/mnist --output_dir=docs/figures \
      --jmvae_dir=/work/runs/jmvae --hierarchical_jmvae_dir=/work/runs/hierarchical_jmvae \
      --jmvae_kl_dir=/work/runs/jmvae_kl \
      --jmvae_latent2_dir=/work/runs/jmvae_latent2 --jmvae_kl_latent2_dir=/work/runs/jmvae_kl_latent2

Figure 3: images generated from each label 0-9 (columns), one row per number of iterative-sampling
  steps (mean of p(x|z), z ~ q(z|x_k, w)); JMVAE-kl also gets a first row from q(z|w).
Figure 4: single-conditional log p(x~|w) (and log p(w~|x)) against the number of steps; JMVAE-kl,
  which needs no iterative sampling, is the flat line of its q(z|w) estimate.
Figure 5: the 2-D latent of the test set coloured by label, z ~ q(z|x,w) and z from w alone
  (JMVAE: q(z|x=0,w), the start of iterative sampling; JMVAE-kl: q(z|w)).

Faces (--dataset=celeb_a, --figures=6,7,8,9, any of the model-dir flags, e.g.
--jmvae_kl_gan_dir=/work/runs/gan --jmvae_kl_dir=/work/runs/jmvae_kl):
Figure 6: faces generated from the attributes of --num_faces test faces, one row per number of
  iterative-sampling steps (--steps), and a row from q(z|w) for JMVAE-kl.
Figure 7: single-conditional log p(x~|w) and log p(w~|x) against the number of steps.
Figure 8a: the average face p(x|z_mean), z_mean the mean of q(z|w), and --num_random faces from
  z_mean + sigma * eps, eps ~ N(0, --zeta), where w is test face --base_face's attributes with
  each of --face_attributes set to 2 (-2 for a "-" name); 8b: a PCA of those latents.
Figure 9: bi-directional editing of --num_faces test faces, one column per --face_edits edit:
  x + x'_mean - x_mean (jmvae_tf/inspection/editing.py).
PNGs go to --output_dir, the same images to TensorBoard under --output_dir/logs.
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from jmvae_tf.models import registry
from runners import flagutil

FLAGS = flags.FLAGS

# Flag -> the model its directory must hold (Figures 3, 4, 6-9; the latent2 ones: Figure 5).
MODEL_FLAGS = {f"{m}_dir": m for m in ("jmvae", "hierarchical_jmvae", "jmvae_kl", "jmvae_kl_gan")}
MNIST_FIGURES = ("3", "4", "5")
FACE_FIGURES = ("6", "7", "8", "9")
LATENT2_FLAGS = {f"{m}_latent2_dir": m for m in ("jmvae", "jmvae_kl")}


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
  for name, model in MODEL_FLAGS.items():
    title = registry.title(model)
    flags.DEFINE_string(name, None, f"Model dir of a trained {title} (Figures 3, 4, 6-9).", **d)
  for name, model in LATENT2_FLAGS.items():
    title = registry.title(model)
    flags.DEFINE_string(
      name, None, f"Model dir of a {title} trained with --latent_dim=2 (Figure 5).", **d
    )
  flags.DEFINE_string(
    "output_dir", None, "Where the PNGs go; TensorBoard images under its logs/.", **d
  )
  flags.DEFINE_list("figures", ["3", "4", "5"], "Which figures to draw.", **d)
  flagutil.define_data_flags(fv)
  flags.DEFINE_list(
    "steps",
    ["0", "1", "2", "5", "10", "100"],
    "Figure 3: iterative-sampling steps, one row each (with three or more modalities: the "
    "largest, for every row).",
    **d,
  )
  flags.DEFINE_list(
    "curve_steps",
    ["0", "1", "2", "5", "10", "20", "50", "100"],
    "Figure 4: steps on the x axis.",
    **d,
  )
  flags.DEFINE_integer("curve_num_test", 1000, "Figure 4: test examples per point.", **d)
  flags.DEFINE_integer("num_samples", 10, "Figure 4: N samples of z in the eq 11 bound.", **d)
  flags.DEFINE_integer("latent_num_test", 10000, "Figure 5: test examples plotted.", **d)
  flags.DEFINE_integer("batch_size", 500, "Test examples per compiled batch.", **d)
  flags.DEFINE_integer("seed", 0, "Seed of the sampling.", **d)
  flags.DEFINE_integer("num_faces", 8, "Figures 6 and 9: test faces shown.", **d)
  flags.DEFINE_list(
    "face_attributes",
    ["Smiling", "Eyeglasses", "Wearing_Hat", "Blond_Hair", "Male", "-Young"],
    'Figure 8: attributes set to 2 (a leading "-": to -2), one column each.',
    **d,
  )
  flags.DEFINE_integer(
    "base_face", 0, "Figure 8: the test face whose attributes are the base.", **d
  )
  flags.DEFINE_integer("num_random", 6, "Figure 8: random faces per attribute.", **d)
  flags.DEFINE_float("zeta", 0.6, "Figure 8: variance of eps in z_mean + sigma * eps.", **d)
  flags.DEFINE_list(
    "face_edits",
    ["+Smiling", "-Smiling", "+Eyeglasses", "+Wearing_Hat", "+Blond_Hair", "+Male"],
    "Figure 9: one edit per column.",
    **d,
  )
  flags.DEFINE_float("edit_strength", 1.0, "Figure 9: the value an edited attribute gets.", **d)
  flags.mark_flag_as_required("output_dir", flag_values=fv)


def report_curves(figure: str, curves, steps, digits: int, out: str, **record):
  """Prints Figure `figure`'s log-likelihood-against-K curves, one line each, and writes
  them to figure<figure>.json with the steps and `record`."""
  for name, by_model in curves.items():
    for title, values in by_model.items():
      print(
        f"figure {figure}: {title} {name}: "
        + ", ".join(f"K={k}: {v:.{digits}f}" for k, v in zip(steps, values))
      )
  from jmvae_tf.core import files  # pylint: disable=g-import-not-at-top

  files.write_whole(
    os.path.join(out, f"figure{figure}.json"),
    json.dumps({"steps": steps, **record, "curves": curves}, indent=2),
    files.OUTPUT_KEPT,
  )


def _int_list(name, values):
  try:
    out = [int(v) for v in values]
  except ValueError:
    raise ValueError(f"--{name} must be integers, got {values}") from None
  if not out or out != sorted(out) or out[0] < 0:
    raise ValueError(f"--{name} must be non-negative and increasing, got {values}")
  return out


def check_args(fv=FLAGS):
  """Checks every flag and model dir; returns ({flag: run_dir.Run} of the dirs given,
  the figures that can be drawn, one line per asked figure that cannot, and the runs' data
  set and its options)."""
  from jmvae_tf.core import files  # pylint: disable=g-import-not-at-top
  from jmvae_tf.training import run_dir  # pylint: disable=g-import-not-at-top

  files.check_writable(fv.output_dir, "--output_dir")  # before anything is drawn
  unknown = [f for f in fv.figures if f not in MNIST_FIGURES + FACE_FIGURES]
  if unknown:
    raise ValueError(f"--figures: unknown figure(s) {unknown}; choose from 3-9")
  if fv.num_faces < 1 or fv.num_random < 0 or fv.zeta < 0 or fv.base_face < 0:
    raise ValueError("--num_faces must be >= 1 and --num_random, --zeta, --base_face >= 0")
  face_edits(fv)
  _int_list("steps", fv.steps)
  _int_list("curve_steps", fv.curve_steps)
  for name in ("curve_num_test", "num_samples", "latent_num_test", "batch_size"):
    if getattr(fv, name) < 1:
      raise ValueError(f"--{name} must be at least 1, got {getattr(fv, name)}")
  runs = {}
  for name, model in {**MODEL_FLAGS, **LATENT2_FLAGS}.items():
    d = getattr(fv, name)
    if not d:
      continue
    try:
      run = run_dir.load_run(d)
    except run_dir.RunDirError as e:
      raise ValueError(f"--{name}={d} is not a trained model dir: {e}") from None
    config = run.config
    if config.model != model:
      raise ValueError(f"--{name}={d} holds a {config.model} model, expected {model}")
    if name in LATENT2_FLAGS and config.latent_dim != 2:
      raise ValueError(f"--{name}={d} has latent_dim={config.latent_dim}; Figure 5 needs 2")
    runs[name] = run
  needs = {"3": MODEL_FLAGS, "4": MODEL_FLAGS, "5": LATENT2_FLAGS}
  needs.update({f: MODEL_FLAGS for f in FACE_FIGURES})
  drawable, missing = [], []
  for figure in fv.figures:
    if any(n in runs for n in needs[figure]):
      drawable.append(figure)
    else:
      missing.append(f"Figure {figure} needs at least one of --" + ", --".join(needs[figure]))
  if not drawable:
    raise ValueError("; ".join(missing))
  dataset, data_options = flagutil.run_data(list(runs.values()), fv)
  # Figures 3-5 are for data with a class (MNIST's label), 6-9 for attributes.
  modalities = next(iter(runs.values())).config.modalities
  with_classes = any(m.likelihood.classes(m.shape) is not None for m in modalities)
  wrong = [f for f in fv.figures if f in (FACE_FIGURES if with_classes else MNIST_FIGURES)]
  if wrong:
    raise ValueError(
      f"--figures={','.join(wrong)} cannot be drawn for --dataset={dataset}: Figures 3-5 "
      "are for images and classes (MNIST's), 6-9 for images and attributes (the faces')"
    )
  return runs, drawable, missing, (dataset, data_options)


def face_edits(fv=FLAGS):
  """(Figure 8's (name, column, +-2) choices, Figure 9's editing.Edit list), or a ValueError
  naming an unknown attribute and listing CelebA's."""
  from jmvae_tf.inspection import editing, figures  # pylint: disable=g-import-not-at-top
  from pipelines.celeba_attributes import ATTRIBUTE_NAMES  # pylint: disable=g-import-not-at-top

  chosen = [
    (e.name, e.index, e.value)
    for e in editing.parse_edits(
      ",".join(fv.face_attributes), ATTRIBUTE_NAMES, figures.FIGURE8_VALUE
    )
  ]
  edits = [
    editing.parse_edits(item, ATTRIBUTE_NAMES, fv.edit_strength)[0] for item in fv.face_edits
  ]
  return chosen, edits


def draw_face_figures(data, models, drawable, save, out):
  """Figures 6-9 for each model in `models` ({title: (key, model)})."""
  from jmvae_tf.inspection import figures  # pylint: disable=g-import-not-at-top

  split = data.held_out_split()
  faces = next(iter(data.eval_dataset(split, FLAGS.num_faces, num_examples=FLAGS.num_faces)))
  first = next(iter(models.values()))[1]
  image_name, _ = figures.face_modalities(first)
  image_spec = next(m for m in data.modalities if m.name == image_name)
  value_range = image_spec.likelihood.picture_range(faces[image_name])
  if "6" in drawable:
    steps = _int_list("steps", FLAGS.steps)
    for title, (key, model) in models.items():
      image, attributes = figures.face_modalities(model)
      row_names, rows = figures.figure6_rows(
        model, {attributes: faces[attributes]}, steps, FLAGS.seed
      )
      save(
        figures.draw_figure6(
          faces[image].numpy(),
          rows,
          row_names,
          f"Figure 6: {title}, faces from the attributes of {FLAGS.num_faces} test faces",
          value_range,
        ),
        f"figure6_{key}",
      )
  if "7" in drawable:
    steps = _int_list("curve_steps", FLAGS.curve_steps)
    n = min(FLAGS.curve_num_test, data.num_examples(split))
    dataset = data.eval_dataset(split, FLAGS.batch_size, num_examples=n)
    curves = figures.figure7_curves(
      {t: m for t, (_, m) in models.items()},
      dataset,
      steps,
      FLAGS.num_samples,
      FLAGS.seed,
      figures.face_directions(first),
    )
    save(figures.draw_figure7(curves, steps), "figure7")
    report_curves("7", curves, steps, 1, out, num_examples=n)
  chosen, edits = face_edits()
  # JMVAE infers z from w by iterative sampling: as many steps as Figure 6's last row.
  num_steps = max(_int_list("steps", FLAGS.steps))
  if "8" in drawable:
    base_n = FLAGS.base_face + 1
    base = next(iter(data.eval_dataset(split, base_n, num_examples=base_n)))
    for title, (key, model) in models.items():
      _, attributes = figures.face_modalities(model)
      panels = figures.figure8_faces(
        model,
        base[attributes].numpy()[FLAGS.base_face],
        chosen,
        FLAGS.num_random,
        FLAGS.seed,
        FLAGS.zeta,
        num_steps=num_steps,
      )
      save(
        figures.draw_figure8a(
          panels,
          f"Figure 8a: {title}, test face {FLAGS.base_face}'s attributes, one set to +-2",
          value_range,
        ),
        f"figure8a_{key}",
      )
      save(figures.draw_figure8b(panels, f"Figure 8b: {title}, PCA of z"), f"figure8b_{key}")
  if "9" in drawable:
    for title, (key, model) in models.items():
      image, _ = figures.face_modalities(model)
      columns, grid = figures.figure9_grid(model, faces[image].numpy(), edits, num_steps)
      save(
        figures.draw_face_grid(
          grid,
          [f"face {i}" for i in range(len(grid))],
          columns,
          f"Figure 9: {title}, bi-directional editing x + x'_mean - x_mean",
          value_range,
        ),
        f"figure9_{key}",
      )


def draw_subset_figures(data, models, save):
  """Figure 3's analogue for three or more modalities: for each image modality, one test
  example of each class (columns), and what each model generates of it from each set of the
  other modalities (rows); JMVAE and hierarchical JMVAE sample iteratively for the largest
  of --steps."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from jmvae_tf.core.modalities import IMAGE  # pylint: disable=g-import-not-at-top
  from jmvae_tf.inspection import figures  # pylint: disable=g-import-not-at-top

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
        model, examples, m.name, FLAGS.seed, max(_int_list("steps", FLAGS.steps))
      )
      save(
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


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  # DataError, IdxError, RunDirError (e.g. a checkpoint with non-finite weights), EditError
  # (not a faces-and-attributes model), a full disk: one line.
  with flagutil.one_line_errors():
    draw_all()


def draw_all():
  """Checks the flags and the data, then draws each figure asked for that the models given
  can draw, as a PNG and a TensorBoard image."""
  from pipelines import registry as data_registry  # pylint: disable=g-import-not-at-top

  runs, drawable, missing, (dataset, data_options) = check_args()
  data = data_registry.make_dataset(dataset, FLAGS.data_dir, options=data_options)
  for line in missing:
    print(f"skipping: {line} (--figures={','.join(drawable)} draws the others)")
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from jmvae_tf.core.modalities import IMAGE  # pylint: disable=g-import-not-at-top
  from jmvae_tf.inspection import figures  # pylint: disable=g-import-not-at-top

  out = FLAGS.output_dir
  os.makedirs(out, exist_ok=True)
  writer = tf.summary.create_file_writer(os.path.join(out, "logs"))

  def save(fig, name):
    figures.save_figure(fig, os.path.join(out, f"{name}.png"), writer, name.replace("_", "/", 1))
    plt.close(fig)
    print(f"wrote {os.path.join(out, name + '.png')}")

  models = {
    registry.title(MODEL_FLAGS[n]): (MODEL_FLAGS[n], runs[n].restore())
    for n in MODEL_FLAGS
    if n in runs
  }
  # x: the (first) image, w: the class (MNIST's label).
  x = next(m for m in data.modalities if m.family == IMAGE)
  w = next((m for m in data.modalities if m.likelihood.classes(m.shape) is not None), None)
  if set(drawable) & set(FACE_FIGURES):
    for _, model in models.values():
      figures.face_modalities(model)  # EditError: not a faces-and-attributes model
    draw_face_figures(data, models, drawable, save, out)
  if "3" in drawable and len(data.modalities) > 2:
    draw_subset_figures(data, models, save)
  elif "3" in drawable:
    steps = _int_list("steps", FLAGS.steps)
    classes = w.likelihood.classes(w.shape)  # one column per class of w
    for title, (key, model) in models.items():
      row_names, rows = figures.figure3_rows(
        model, {w.name: tf.constant(classes)}, x.name, steps, FLAGS.seed
      )
      save(
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
  if "4" in drawable:
    steps = _int_list("curve_steps", FLAGS.curve_steps)
    dataset = data.eval_dataset("test", FLAGS.batch_size, num_examples=FLAGS.curve_num_test)
    curves = figures.figure4_curves(
      {t: m for t, (_, m) in models.items()}, dataset, steps, FLAGS.num_samples, FLAGS.seed
    )
    save(figures.draw_figure4(curves, steps), "figure4")
    report_curves("4", curves, steps, 3, out)
  if "5" in drawable:
    n = FLAGS.latent_num_test
    dataset = data.eval_dataset("test", FLAGS.batch_size, num_examples=n)
    panels = {
      registry.title(LATENT2_FLAGS[f]): figures.figure5_latents(
        runs[f].restore(), dataset, FLAGS.seed, given=(w.name,)
      )
      for f in LATENT2_FLAGS
      if f in runs
    }
    save(figures.draw_figure5(panels, data.classes("test", n)), "figure5")
  writer.flush()


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=flagutil.parse_or_exit)
