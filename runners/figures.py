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

import io
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
    flags.DEFINE_string(name, None, f"Model dir of a {title} trained with --latent_dim=2 (Figure 5).", **d)
  flags.DEFINE_string("output_dir", None, "Where the PNGs go; TensorBoard images under its logs/.", **d)
  flags.DEFINE_list("figures", ["3", "4", "5"], "Which figures to draw.", **d)
  flags.DEFINE_string("data_dir", None, "Directory of the four MNIST IDX files; TFDS when unset.", **d)
  flags.DEFINE_enum("tfds_name", "mnist", ["mnist", "fashion_mnist"], "TFDS data set when --data_dir is unset.", **d)
  flags.DEFINE_list("steps", ["0", "1", "2", "5", "10", "100"],
                    "Figure 3: iterative-sampling steps, one row each.", **d)
  flags.DEFINE_list("curve_steps", ["0", "1", "2", "5", "10", "20", "50", "100"],
                    "Figure 4: steps on the x axis.", **d)
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
  """Checks every flag and model dir; returns {flag: ModelConfig} of the dirs given."""
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
  if ({"3", "4"} & set(fv.figures)) and not any(n in configs for n in MODEL_FLAGS):
    raise ValueError("Figures 3/4 need at least one of --" + ", --".join(MODEL_FLAGS))
  if "5" in fv.figures and not any(n in configs for n in LATENT2_FLAGS):
    raise ValueError("Figure 5 needs at least one of --" + ", --".join(LATENT2_FLAGS))
  return configs


# --- drawing -----------------------------------------------------------------------------

def _save(fig, path: str, writer, tag: str):
  """Writes the figure as PNG and the same image to TensorBoard."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
  with open(path, "wb") as f:
    f.write(buf.getvalue())
  with writer.as_default(step=0):
    tf.summary.image(tag, tf.image.decode_png(buf.getvalue(), channels=4)[tf.newaxis])
  print(f"wrote {path}")


def figure3(models, steps, seed, out_dir, writer):
  """Rows: steps of iterative sampling; columns: labels 0-9 (one image each, mean of p(x|z))."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jmvae_tf import gaussian  # pylint: disable=g-import-not-at-top
  from jmvae_tf.evaluation import iterative  # pylint: disable=g-import-not-at-top
  labels = {"label": tf.one_hot(tf.range(10), 10)}
  for key, (title, model) in models.items():
    rows = [r.numpy() for r in iterative.imputation_trajectory(model, labels, "image", steps, (seed, 3))]
    row_names = [f"{k} step{'s' if k != 1 else ''}" for k in steps]
    if hasattr(model, "subset_encoders"):
      mean, var = model.encode_subset(labels, ["label"], training=False)
      z = gaussian.sample(mean, var, tf.constant([seed, 4], tf.int64))
      rows.insert(0, model.decoders["image"](z, training=False).mean().numpy())
      row_names.insert(0, "q(z|w)")
    fig, axes = plt.subplots(len(rows), 10, figsize=(10 * 0.9, len(rows) * 0.95))
    for r, (row, name) in enumerate(zip(rows, row_names)):
      for c in range(10):
        ax = axes[r, c]
        ax.imshow(np.asarray(row[c]).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
        if r == 0:
          ax.set_title(str(c), fontsize=9)
        if c == 0:
          ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(f"Figure 3: {title}, images from labels 0-9 by iterative-sampling steps", fontsize=10)
    _save(fig, os.path.join(out_dir, f"figure3_{key}.png"), writer, f"figure3/{key}")
    plt.close(fig)


def figure4(models, dataset, steps, num_samples, seed, out_dir, writer):
  """Single-conditional log-likelihoods against the number of iterative-sampling steps."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jmvae_tf.evaluation import estimators  # pylint: disable=g-import-not-at-top
  directions = (("image", ("label",), "log p(x~|w)"), ("label", ("image",), "log p(w~|x)"))
  curves = {}
  for key, (title, model) in models.items():
    for target, given, name in directions:
      imputes = estimators.uses_iterative_sampling(model, target, given)
      values = []
      for k in (steps if imputes else steps[:1]):
        total, count = 0.0, 0
        for i, batch in enumerate(dataset):
          v = estimators.conditional_log_likelihood(model, batch, target, given, num_samples, k, seed=(seed, i))
          total, count = total + float(tf.reduce_sum(v)), count + int(v.shape[0])
        values.append(total / count)
      if not imputes:
        values = values * len(steps)
      curves.setdefault(name, {})[title] = values
      print(f"figure 4: {title} {name}: " + ", ".join(f"K={k}: {v:.3f}" for k, v in zip(steps, values)), flush=True)
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for ax, (name, by_model) in zip(axes, curves.items()):
    for title, values in by_model.items():
      ax.plot(steps, values, marker="o", label=title)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks(steps)
    ax.set_xticklabels([str(k) for k in steps])
    ax.set_xlabel("iterative-sampling steps K")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.suptitle("Figure 4: single-conditional log-likelihood (eq 11 bound, test) vs iterative-sampling steps",
               fontsize=10)
  fig.tight_layout()
  _save(fig, os.path.join(out_dir, "figure4.png"), writer, "figure4")
  plt.close(fig)
  with open(os.path.join(out_dir, "figure4.json"), "w") as f:
    json.dump({"steps": steps, "curves": curves}, f, indent=2)


def figure5(models, images, labels, seed, out_dir, writer, batch_size):
  """2-D latents coloured by label: z ~ q(z|x,w) and z from w alone."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jmvae_tf import gaussian  # pylint: disable=g-import-not-at-top
  from jmvae_tf.evaluation import iterative  # pylint: disable=g-import-not-at-top
  from pipelines import mnist  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(len(models), 2, figsize=(10, 4.6 * len(models)), squeeze=False,
                           gridspec_kw={"wspace": 0.3, "hspace": 0.35})
  for r, (key, (title, model)) in enumerate(models.items()):
    joint, alone = [], []
    for i, batch in enumerate(mnist.eval_dataset(images, labels, batch_size)):
      s = tf.random.experimental.stateless_split(tf.constant([seed, i], tf.int64), 2)
      joint.append(gaussian.sample(*model.encode(batch, training=False), s[0]).numpy())
      if hasattr(model, "subset_encoders"):
        params, how = model.encode_subset(batch, ["label"], training=False), "q(z|w)"
      else:
        params, how = model.encode(iterative.zero_filled(model, batch, "image"), training=False), "q(z|x=0,w)"
      alone.append(gaussian.sample(*params, s[1]).numpy())
    panels = ((axes[r, 0], np.concatenate(joint), "q(z|x,w)"), (axes[r, 1], np.concatenate(alone), how))
    both = np.concatenate([panels[0][1], panels[1][1]])
    low, high = both.min(0) - 0.2, both.max(0) + 0.2  # one scale per row: a collapse shows as a small cloud
    for ax, z, name in panels:
      sc = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=2, vmin=-0.5, vmax=9.5)
      ax.set_title(f"{title}: z ~ {name}", fontsize=10)
      ax.set_xlim(low[0], high[0]), ax.set_ylim(low[1], high[1])
      ax.set_xlabel("z1"), ax.set_ylabel("z2")
    fig.colorbar(sc, ax=axes[r, :].tolist(), ticks=range(10), label="label")
  fig.suptitle(f"Figure 5: 2-D latent of {len(labels)} test images", fontsize=11)
  _save(fig, os.path.join(out_dir, "figure5.png"), writer, "figure5")
  plt.close(fig)


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  from pipelines import idx, mnist  # pylint: disable=g-import-not-at-top
  try:
    configs = check_args()
    arrays = mnist.load_arrays(FLAGS.data_dir, FLAGS.tfds_name)
  except (ValueError, idx.IdxError, mnist.DataError) as e:
    flagutil.fail(str(e))
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jmvae_tf import training  # pylint: disable=g-import-not-at-top

  os.makedirs(FLAGS.output_dir, exist_ok=True)
  writer = tf.summary.create_file_writer(os.path.join(FLAGS.output_dir, "logs"))
  models = {MODEL_FLAGS[n][0]: (MODEL_FLAGS[n][1], training.restore_model(getattr(FLAGS, n)))
            for n in MODEL_FLAGS if n in configs}
  if "3" in FLAGS.figures:
    figure3(models, _int_list("steps", FLAGS.steps), FLAGS.seed, FLAGS.output_dir, writer)
  if "4" in FLAGS.figures:
    n = FLAGS.curve_num_test
    dataset = mnist.eval_dataset(arrays.test_images[:n], arrays.test_labels[:n], FLAGS.batch_size)
    figure4(models, dataset, _int_list("curve_steps", FLAGS.curve_steps), FLAGS.num_samples, FLAGS.seed,
            FLAGS.output_dir, writer)
  if "5" in FLAGS.figures:
    latent2 = {LATENT2_FLAGS[n][0]: (LATENT2_FLAGS[n][1], training.restore_model(getattr(FLAGS, n)))
               for n in LATENT2_FLAGS if n in configs}
    n = FLAGS.latent_num_test
    figure5(latent2, arrays.test_images[:n], arrays.test_labels[:n], FLAGS.seed, FLAGS.output_dir, writer,
            FLAGS.batch_size)
  writer.flush()


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=flagutil.parse_or_exit)
