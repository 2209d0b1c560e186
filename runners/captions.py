r"""Captions of a trained run with a text modality, as PNG figures and Markdown:

  python -m runners.captions --model_dir=/tmp/t28/cap1 --data_dir=../shared/data/mnist \
      --output_dir=/tmp/captions --captions="a handwritten seven","the digit 2"

  OUTPUT_DIR/captions_from_<image>.png   --num_examples test images, each with the caption
                                         generated from it, its true caption, and whether the
                                         data set's parser reads the generated one right
  OUTPUT_DIR/<image>_from_captions.png   --num_images images generated from each of --captions
                                         (default: the first few test captions): the paper's
                                         Figure 1 ("a smiling woman with eyeglasses" -> faces)
  OUTPUT_DIR/captions.md                 per test example its true caption, the caption
                                         reconstructed from every modality and generated from
                                         each other set (TensorBoard's caption tables)

The built-in data sets have no caption corpus: their captions are made from the labels (or the
faces' attributes) by a grammar (pipelines/captions.py), and every output says so with the
parser's agreement with the true labels on the real test captions. A run without a text
modality is refused. See jmvae_tf/inspection/captions.py.
"""

from __future__ import annotations

from absl import flags

from runners import flagutil

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
  flagutil.define_plugins_flag(fv)
  flags.DEFINE_string(
    "model_dir", None, "Model directory written by runners.train (run.json + ckpt/).", **d
  )
  flags.DEFINE_string("output_dir", None, "Where the PNGs and captions.md go.", **d)
  flagutil.define_data_flags(fv)
  flags.DEFINE_list(
    "captions",
    [],
    'Captions to generate images from, comma-separated (e.g. "a smiling woman with '
    'eyeglasses","a man wearing a hat"); default: the first few test captions.',
    **d,
  )
  flags.DEFINE_integer(
    "num_examples", 8, "Test examples captioned (and rows of captions.md).", lower_bound=1, **d
  )
  flags.DEFINE_integer("num_images", 6, "Images generated from each caption.", lower_bound=1, **d)
  flags.DEFINE_integer("seed", 0, "Seed of the draws of z.", **d)
  flags.DEFINE_integer(
    "data_seed", 0, "Seed of the test set's binarisation and captions (as evaluation's).", **d
  )
  flags.DEFINE_string(
    "checkpoint", None, "Checkpoint prefix to read; default: the latest in MODEL_DIR/ckpt.", **d
  )
  flags.mark_flag_as_required("model_dir", flag_values=fv)
  flags.mark_flag_as_required("output_dir", flag_values=fv)


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  # RunDirError, DataError, a run without text, a bad caption, a full disk: one line.
  with flagutil.one_line_errors():
    write_all(FLAGS)


def write_all(fv=FLAGS):
  """Checks the output dir, the run (it has a text modality) and its data, then writes the
  figures and captions.md (jmvae_tf.inspection.captions.write_captions)."""
  import jmvae_tf  # pylint: disable=g-import-not-at-top
  from jmvae_tf.core import files  # pylint: disable=g-import-not-at-top
  from jmvae_tf.inspection import captions  # pylint: disable=g-import-not-at-top

  files.check_writable(fv.output_dir, "--output_dir")  # before any work
  run = jmvae_tf.load_run(fv.model_dir, fv.checkpoint)
  captions.check_text(run.config.modalities, f"--model_dir={fv.model_dir}")
  data = flagutil.make_run_data([run], fv)
  print(f"read {run.describe()}", flush=True)
  jmvae_tf.write_captions(
    run.restore(),
    data,
    fv.output_dir,
    fv.captions or None,
    fv.num_examples,
    fv.num_images,
    fv.seed,
    fv.data_seed,
    title=run.describe(),
  )


if __name__ == "__main__":
  flagutil.run(define_flags, main)
