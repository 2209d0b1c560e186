r"""The paper's MNIST figures 3, 4 and 5 from trained models, as PNG files and TensorBoard images.

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
PNGs go to --output_dir, the same images to TensorBoard under --output_dir/logs.
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from runners import flagutil

FLAGS = flags.FLAGS

# Flag -> the model type its directory must hold, and which figures use it.
MODEL_FLAGS = {
  "jmvae_dir": ("jmvae", "JMVAE"),
  "hierarchical_jmvae_dir": ("hierarchical_jmvae", "Hierarchical JMVAE"),
  "jmvae_kl_dir": ("jmvae_kl", "JMVAE-kl"),
}
LATENT2_FLAGS = {
  "jmvae_latent2_dir": ("jmvae", "JMVAE"),
  "jmvae_kl_latent2_dir": ("jmvae_kl", "JMVAE-kl"),
}


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
  for name, (_, title) in MODEL_FLAGS.items():
    flags.DEFINE_string(name, None, f"Model dir of a trained {title} (Figures 3 and 4).", **d)
  for name, (_, title) in LATENT2_FLAGS.items():
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
    "Figure 3: iterative-sampling steps, one row each.",
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
  flags.mark_flag_as_required("output_dir", flag_values=fv)


def _int_list(name, values):
  try:
    out = [int(v) for v in values]
  except ValueError:
    raise ValueError(f"--{name} must be integers, got {values}") from None
  if not out or out != sorted(out) or out[0] < 0:
    raise ValueError(f"--{name} must be non-negative and increasing, got {values}")
  return out


def check_args(fv=FLAGS):
  """Checks every flag and model dir; returns ({flag: ModelConfig} of the dirs given,
  the figures that can be drawn, and one line per asked figure that cannot)."""
  from jmvae_tf import training  # pylint: disable=g-import-not-at-top

  unknown = [f for f in fv.figures if f not in ("3", "4", "5")]
  if unknown:
    raise ValueError(f"--figures: unknown figure(s) {unknown}; choose from 3, 4, 5")
  _int_list("steps", fv.steps)
  _int_list("curve_steps", fv.curve_steps)
  for name in ("curve_num_test", "num_samples", "latent_num_test", "batch_size"):
    if getattr(fv, name) < 1:
      raise ValueError(f"--{name} must be at least 1, got {getattr(fv, name)}")
  configs = {}
  for name, (model, _) in {**MODEL_FLAGS, **LATENT2_FLAGS}.items():
    d = getattr(fv, name)
    if not d:
      continue
    config = training.read_model_config(d)
    if config is None or training.latest_checkpoint(d) is None:
      raise ValueError(f"--{name}={d} is not a trained model dir (no run.json or no checkpoint)")
    if config.model != model:
      raise ValueError(f"--{name}={d} holds a {config.model} model, expected {model}")
    if name in LATENT2_FLAGS and config.latent_dim != 2:
      raise ValueError(f"--{name}={d} has latent_dim={config.latent_dim}; Figure 5 needs 2")
    configs[name] = config
  needs = {"3": MODEL_FLAGS, "4": MODEL_FLAGS, "5": LATENT2_FLAGS}
  drawable, missing = [], []
  for figure in fv.figures:
    if any(n in configs for n in needs[figure]):
      drawable.append(figure)
    else:
      missing.append(f"Figure {figure} needs at least one of --" + ", --".join(needs[figure]))
  if not drawable:
    raise ValueError("; ".join(missing))
  return configs, drawable, missing


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  from pipelines import registry  # pylint: disable=g-import-not-at-top

  try:
    configs, drawable, missing = check_args()
    data = registry.make_dataset(FLAGS.dataset, FLAGS.data_dir, options=FLAGS.data_options)
  except ValueError as e:  # DataError, IdxError: ValueErrors
    flagutil.fail(str(e))
  for line in missing:
    print(f"skipping: {line} (--figures={','.join(drawable)} draws the others)")
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from jmvae_tf import figures, training  # pylint: disable=g-import-not-at-top

  out = FLAGS.output_dir
  os.makedirs(out, exist_ok=True)
  writer = tf.summary.create_file_writer(os.path.join(out, "logs"))

  def restore(model_dir):
    try:
      return training.restore_model(model_dir)
    except ValueError as e:  # RunDirError: e.g. a checkpoint with non-finite weights
      flagutil.fail(str(e))

  def save(fig, name):
    figures.save_figure(fig, os.path.join(out, f"{name}.png"), writer, name.replace("_", "/", 1))
    plt.close(fig)
    print(f"wrote {os.path.join(out, name + '.png')}")

  models = {
    MODEL_FLAGS[n][1]: (MODEL_FLAGS[n][0], restore(getattr(FLAGS, n)))
    for n in MODEL_FLAGS
    if n in configs
  }
  if "3" in drawable:
    steps = _int_list("steps", FLAGS.steps)
    classes = data.modalities[1].shape[0]
    labels = {"label": tf.one_hot(tf.range(classes), classes)}
    for title, (key, model) in models.items():
      row_names, rows = figures.figure3_rows(model, labels, "image", steps, FLAGS.seed)
      save(
        figures.draw_figure3(
          rows,
          row_names,
          list(range(classes)),
          f"Figure 3: {title}, images from labels 0-{classes - 1} by iterative-sampling steps",
        ),
        f"figure3_{key}",
      )
  if "4" in drawable:
    steps = _int_list("curve_steps", FLAGS.curve_steps)
    dataset = data.eval_dataset("test", FLAGS.batch_size, num_examples=FLAGS.curve_num_test)
    curves = figures.figure4_curves(
      {t: m for t, (_, m) in models.items()}, dataset, steps, FLAGS.num_samples, FLAGS.seed
    )
    for name, by_model in curves.items():
      for title, values in by_model.items():
        print(
          f"figure 4: {title} {name}: "
          + ", ".join(f"K={k}: {v:.3f}" for k, v in zip(steps, values))
        )
    save(figures.draw_figure4(curves, steps), "figure4")
    with open(os.path.join(out, "figure4.json"), "w") as f:
      json.dump({"steps": steps, "curves": curves}, f, indent=2)
  if "5" in drawable:
    n = FLAGS.latent_num_test
    dataset = data.eval_dataset("test", FLAGS.batch_size, num_examples=n)
    panels = {
      LATENT2_FLAGS[f][1]: figures.figure5_latents(restore(getattr(FLAGS, f)), dataset, FLAGS.seed)
      for f in LATENT2_FLAGS
      if f in configs
    }
    save(figures.draw_figure5(panels, data.metadata("test", n)["label"]), "figure5")
  writer.flush()


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=flagutil.parse_or_exit)
