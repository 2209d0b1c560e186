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

import dataclasses
import re

from absl import flags

from jmvae_tf.models import registry
from runners import flagutil

FLAGS = flags.FLAGS

# Flag -> the model its directory must hold (Figures 3, 4, 6-9; the latent2 ones: Figure 5).
MODEL_FLAGS = {f"{m}_dir": m for m in ("jmvae", "hierarchical_jmvae", "jmvae_kl", "jmvae_kl_gan")}
LATENT2_FLAGS = {f"{m}_latent2_dir": m for m in ("jmvae", "jmvae_kl")}


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
  flagutil.define_plugins_flag(fv)
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


def settings_from_flags(fv=FLAGS):
  """The figures' settings (jmvae_tf.inspection.paper_figures.FigureSettings, which checks
  them), refused with the flags' names, before any model or data is read."""
  from jmvae_tf.inspection import paper_figures  # pylint: disable=g-import-not-at-top
  from pipelines.celeba_attributes import ATTRIBUTE_NAMES  # pylint: disable=g-import-not-at-top

  fields = [f.name for f in dataclasses.fields(paper_figures.FigureSettings)]
  values = {name: fv[name].value for name in fields}
  for name in ("steps", "curve_steps", "face_attributes", "face_edits"):
    values[name] = tuple(values[name])
  try:
    settings = paper_figures.FigureSettings(**values)
  except ValueError as e:  # its own words, a flag for each setting it names
    raise ValueError(re.sub(rf"\b({'|'.join(fields)})\b", r"--\1", str(e))) from None
  settings.edits(ATTRIBUTE_NAMES)  # an EditError naming an unknown attribute
  return settings


def check_args(fv=FLAGS):
  """Checks every flag and model dir; returns ({flag: run_dir.Run} of the dirs given,
  the figures that can be drawn, one line per asked figure that cannot, the runs' data
  set and its options, and the figures' settings)."""
  import jmvae_tf  # pylint: disable=g-import-not-at-top
  from jmvae_tf.core import files  # pylint: disable=g-import-not-at-top
  from jmvae_tf.inspection import paper_figures  # pylint: disable=g-import-not-at-top
  from jmvae_tf.training import run_dir  # pylint: disable=g-import-not-at-top

  files.check_writable(fv.output_dir, "--output_dir")  # before anything is drawn
  known = paper_figures.MNIST_FIGURES + paper_figures.FACE_FIGURES
  unknown = [f for f in fv.figures if f not in known]
  if unknown:
    raise ValueError(f"--figures: unknown figure(s) {unknown}; choose from 3-9")
  settings = settings_from_flags(fv)
  runs = {}
  for name, model in {**MODEL_FLAGS, **LATENT2_FLAGS}.items():
    d = getattr(fv, name)
    if not d:
      continue
    try:
      run = jmvae_tf.load_run(d)
    except run_dir.RunDirError as e:
      raise ValueError(f"--{name}={d} is not a trained model dir: {e}") from None
    config = run.config
    if config.model != model:
      raise ValueError(f"--{name}={d} holds a {config.model} model, expected {model}")
    if name in LATENT2_FLAGS and config.latent_dim != 2:
      raise ValueError(f"--{name}={d} has latent_dim={config.latent_dim}; Figure 5 needs 2")
    runs[name] = run
  needs = {"3": MODEL_FLAGS, "4": MODEL_FLAGS, "5": LATENT2_FLAGS}
  needs.update({f: MODEL_FLAGS for f in paper_figures.FACE_FIGURES})
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
  with_classes = paper_figures.with_classes(modalities)
  faces = paper_figures.FACE_FIGURES
  wrong = [f for f in fv.figures if f in (faces if with_classes else paper_figures.MNIST_FIGURES)]
  if wrong:
    raise ValueError(
      f"--figures={','.join(wrong)} cannot be drawn for --dataset={dataset}: Figures 3-5 "
      "are for images and classes (MNIST's), 6-9 for images and attributes (the faces')"
    )
  return runs, drawable, missing, (dataset, data_options), settings


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  # DataError, IdxError, RunDirError (e.g. a checkpoint with non-finite weights), EditError
  # (not a faces-and-attributes model), a full disk: one line.
  with flagutil.one_line_errors():
    draw_all()


def draw_all(fv=FLAGS):
  """Checks the flags and the data, then draws each figure asked for that the models given
  can draw, as a PNG and a TensorBoard image (jmvae_tf.inspection.paper_figures)."""
  from jmvae_tf.inspection import paper_figures  # pylint: disable=g-import-not-at-top

  runs, drawable, missing, _, settings = check_args(fv)
  data = flagutil.make_run_data(list(runs.values()), fv)
  for line in missing:
    print(f"skipping: {line} (--figures={','.join(drawable)} draws the others)")
  models = {
    registry.title(MODEL_FLAGS[n]): (MODEL_FLAGS[n], runs[n].restore())
    for n in MODEL_FLAGS
    if n in runs
  }
  latent2 = {  # Figure 5's: restored only where it is drawn
    registry.title(LATENT2_FLAGS[f]): runs[f].restore()
    for f in LATENT2_FLAGS
    if f in runs and "5" in drawable
  }
  paper_figures.draw_figures(models, data, fv.output_dir, drawable, latent2, settings)


if __name__ == "__main__":
  flagutil.run(define_flags, main)
