r"""Draws test faces, their reconstructions and faces generated from their attributes alone,
for a CelebA-family run (docs/CELEBA.md):

  python docs/synthetic_faces_figure.py --model_dir=RUN --data_dir=FACES --output=out.png

Rows: the input x; the mean of p(x|z), z ~ q(z|x,w); the mean of p(x|z), z from w alone (the
model's posterior given the attributes: JMVAE-kl's q(z|w), JMVAE's iterative sampling).
"""

from __future__ import annotations

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A CelebA-family run of runners.train.")
flags.DEFINE_string("data_dir", None, "The faces (CelebA's layout); TFDS when unset.")
flags.DEFINE_string("output", None, "The PNG to write.")
flags.DEFINE_integer("num_faces", 8, "Test faces, one column each.")
flags.DEFINE_integer("seed", 0, "Seed of the sampling.")
flags.mark_flags_as_required(["model_dir", "output"])


def main(argv):
  del argv
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  from jmvae_tf import figures, gaussian, training  # pylint: disable=g-import-not-at-top
  from jmvae_tf.models.base import split_seed  # pylint: disable=g-import-not-at-top
  from pipelines import registry  # pylint: disable=g-import-not-at-top

  model = training.restore_model(FLAGS.model_dir)
  data = registry.make_dataset("celeb_a", FLAGS.data_dir)
  batch = next(iter(data.eval_dataset("test", FLAGS.num_faces, num_examples=FLAGS.num_faces)))
  s_joint, s_attr, s_infer = split_seed((FLAGS.seed, 0), 3)
  joint = gaussian.sample(*model.posterior(batch, model.modality_names), s_joint)
  given = {"attributes": batch["attributes"]}
  alone = gaussian.sample(*model.posterior(given, ["attributes"], s_infer, 40), s_attr)
  rows = [
    batch["image"].numpy(),
    model.decode(joint, batch, names=["image"])["image"].mean().numpy(),
    model.decode(alone, given, names=["image"])["image"].mean().numpy(),
  ]
  names = ["input x", "from q(z|x,w)", "from w alone"]
  fig = figures.draw_figure3(rows, names, [""] * FLAGS.num_faces, f"{model.name}: faces")
  figures.save_figure(fig, FLAGS.output)
  print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
  app.run(main)
