r"""Draws test faces, their reconstructions and faces generated from their attributes alone,
for CelebA-family runs (docs/CELEBA.md):

  python docs/synthetic_faces_figure.py --model_dir=RUN --data_dir=FACES --output=out.png
  python docs/synthetic_faces_figure.py --model_dir=RUN_A,RUN_B --data_dir=FACES --output=out.png

Rows: the input x; then for each run that generates the image, the mean of p(x|z) with
z ~ q(z|x,w), and the mean of p(x|z) with z from w alone (the model's posterior given the
attributes: JMVAE-kl's q(z|w), JMVAE's iterative sampling, CVAE's prior with w as its
condition, CMMA's p(z|w)). A run that does not generate the image (CVAE/CMMA w|x) is refused.
The title says when the faces are the synthetic stand-in (the data set's provenance).
"""

from __future__ import annotations

import os

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("model_dir", None, "CelebA-family runs of runners.train (comma-separated).")
flags.DEFINE_string("data_dir", None, "The faces (CelebA's layout); TFDS when unset.")
flags.DEFINE_string("output", None, "The PNG to write.")
flags.DEFINE_integer("num_faces", 8, "Test faces, one column each.")
flags.DEFINE_integer("iterations", 40, "Iterative-sampling rounds where a model uses them.")
flags.DEFINE_integer("seed", 0, "Seed of the sampling.")
flags.mark_flags_as_required(["model_dir", "output"])

IMAGE, ATTRIBUTES = "image", "attributes"


def main(argv):
  del argv
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  from jmvae_tf.core import gaussian  # pylint: disable=g-import-not-at-top
  from jmvae_tf.core.modalities import IMAGE  # pylint: disable=g-import-not-at-top
  from jmvae_tf.core.sampling import split_seed  # pylint: disable=g-import-not-at-top
  from jmvae_tf.inspection import figures  # pylint: disable=g-import-not-at-top
  from jmvae_tf.training import run_dir
  from pipelines import registry  # pylint: disable=g-import-not-at-top

  models = []
  for model_dir in FLAGS.model_dir:  # every check before any drawing
    model = run_dir.load(model_dir)
    if IMAGE not in model.generated_modalities:
      raise app.UsageError(f"{model_dir}: its model does not generate the image")
    # Rows are labelled by run directory: it names the run, Keras' model name does not.
    models.append((os.path.basename(os.path.normpath(model_dir)), model))
  data = registry.make_dataset("celeb_a", FLAGS.data_dir)
  batch = next(iter(data.eval_dataset("test", FLAGS.num_faces, num_examples=FLAGS.num_faces)))
  given = {ATTRIBUTES: batch[ATTRIBUTES]}
  rows, names = [batch[IMAGE].numpy()], ["input x"]
  for run_name, model in models:
    s_joint, s_attr, s_infer = split_seed((FLAGS.seed, 0), 3)
    joint = gaussian.sample(*model.posterior(batch, model.modality_names), s_joint)
    alone = gaussian.sample(
      *model.posterior(given, [ATTRIBUTES], s_infer, FLAGS.iterations), s_attr
    )
    rows += [
      model.decode(joint, batch, names=[IMAGE])[IMAGE].mean().numpy(),
      model.decode(alone, given, names=[IMAGE])[IMAGE].mean().numpy(),
    ]
    prefix = f"{run_name}: " if len(models) > 1 else ""
    names += [f"{prefix}from q(z|x,w)", f"{prefix}from w alone"]
  what = data.provenance or "test faces"
  title = f"{models[0][0]}: {what}" if len(models) == 1 else what
  fig = figures.draw_figure3(
    rows,
    names,
    [""] * FLAGS.num_faces,
    title,
    next(m for m in data.modalities if m.family == IMAGE).likelihood.value_range,
  )
  figures.save_figure(fig, FLAGS.output)
  print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
  app.run(main)
