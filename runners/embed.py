r"""Writes latent embeddings of the MNIST test set for the TensorBoard Projector.

  python -m runners.embed --model_dir=/tmp/jmvae_kl --data_dir=../shared/data/mnist
  tensorboard --logdir=/tmp/jmvae_kl/projector     # then the PROJECTOR tab

One embedding per encoder (z_joint from q(z|x,w); z_from_image, z_from_label from
one modality: JMVAE-kl's unimodal encoders, iterative sampling for JMVAE and
hierarchical JMVAE), each with the labels as metadata ("Color by: label") and a
sprite of the test digits. See jmvae_tf/inspection/projector.py.
"""

from __future__ import annotations

import os

from absl import flags

from runners import flagutil

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
  flagutil.define_plugins_flag(fv)
  flags.DEFINE_string(
    "model_dir", None, "Model directory written by runners.train (run.json + ckpt/).", **d
  )
  flags.DEFINE_string(
    "output_dir", None, "Where the projector files go; default MODEL_DIR/projector.", **d
  )
  flagutil.define_data_flags(fv)
  flags.DEFINE_integer(
    "num_examples",
    10000,
    "The first N test examples (a 100x100 sprite for 10000).",
    lower_bound=1,
    **d,
  )
  flags.DEFINE_integer(
    "iterations",
    100,
    "Iterative-sampling rounds for one-modality embeddings of JMVAE and "
    "hierarchical JMVAE (the paper's Table 1: 100).",
    lower_bound=0,
    **d,
  )
  flags.DEFINE_integer("batch_size", 500, "Examples per forward pass.", lower_bound=1, **d)
  flags.DEFINE_integer(
    "data_seed", 0, "Seed of the test set's binarisation (as in runners.train).", **d
  )
  flags.DEFINE_integer("seed", 0, "Seed of iterative sampling.", **d)
  flags.DEFINE_string(
    "checkpoint", None, "Checkpoint prefix to read; default: the latest in MODEL_DIR/ckpt.", **d
  )
  flags.mark_flag_as_required("model_dir", flag_values=fv)


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  import jmvae_tf  # pylint: disable=g-import-not-at-top
  from jmvae_tf.core import files  # pylint: disable=g-import-not-at-top
  from jmvae_tf.inspection import projector  # pylint: disable=g-import-not-at-top

  output_dir = FLAGS.output_dir or os.path.join(FLAGS.model_dir, "projector")
  # RunDirError, DataError, an unreadable checkpoint, a full disk: one line.
  with flagutil.one_line_errors():
    files.check_writable(output_dir, "--output_dir")  # before the embedding work
    run = jmvae_tf.load_run(FLAGS.model_dir, FLAGS.checkpoint)
    data = flagutil.make_run_data([run], FLAGS)
    try:
      projector.check_sprite_size(FLAGS.num_examples, data.display_images("test", 1).shape[1:3])
    except ValueError as e:
      raise ValueError(f"--num_examples={FLAGS.num_examples}: {e}") from None
    print(f"read {run.describe()}", flush=True)
    embeddings = jmvae_tf.write_embeddings(
      run.restore(),
      data,
      output_dir,
      FLAGS.num_examples,
      FLAGS.iterations,
      FLAGS.batch_size,
      FLAGS.data_seed,
      FLAGS.seed,
    )
  print(
    f"wrote {', '.join(f'{k} {v.shape}' for k, v in embeddings.items())} to "
    f"{os.path.abspath(output_dir)}"
  )
  print(f"view them: tensorboard --logdir={os.path.abspath(output_dir)}  (PROJECTOR tab)")


if __name__ == "__main__":
  flagutil.run(define_flags, main)
