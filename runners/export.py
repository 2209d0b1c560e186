r"""Exports a trained model as a SavedModel for TF Serving.

  python -m runners.export --model_dir=/tmp/jmvae_kl --export_dir=/tmp/serving
  saved_model_cli show --dir /tmp/serving/jmvae_kl/1 --all

writes EXPORT_DIR/NAME/VERSION/ (NAME: the model name in run.json unless --name;
VERSION: the next free integer from 1 unless --version; an existing version is
never overwritten). The signatures are described in jmvae_tf/serving/signatures.py and
docs/SERVING.md. --max_batch_size, --max_num_samples and --max_num_steps bound what one
request may ask (refused beyond them); they are recorded in the export (its `limits`
signature and assets.extra/limits.json).
"""

from __future__ import annotations

import os

from absl import flags

from jmvae_tf.core import options
from runners import flagutil

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
  flagutil.define_plugins_flag(fv)
  flags.DEFINE_string(
    "model_dir", None, "Model directory written by runners.train (run.json + ckpt/).", **d
  )
  flags.DEFINE_string(
    "export_dir",
    None,
    "Base directory of the exports (TF Serving's --model_base_path is EXPORT_DIR/NAME).",
    **d,
  )
  flags.DEFINE_string(
    "name", None, "Model name (directory under --export_dir); default: the model in run.json.", **d
  )
  flags.DEFINE_integer(
    "version", None, "Version to write; default: the next free integer, from 1.", lower_bound=1, **d
  )
  flags.DEFINE_string(
    "checkpoint", None, "Checkpoint prefix to export; default: the latest in MODEL_DIR/ckpt.", **d
  )
  flags.DEFINE_bool(
    "restore_run_json",
    False,
    "Instead of exporting: write MODEL_DIR/run.json again from the config its checkpoint "
    "carries (a lost, damaged or hand-edited run.json); --export_dir is not needed.",
    **d,
  )
  flagutil.define_option_flags([options.ServingLimits], fv)
  flags.mark_flags_as_required(["model_dir"], flag_values=fv)


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  import jmvae_tf  # pylint: disable=g-import-not-at-top

  if FLAGS.restore_run_json:
    from jmvae_tf.training import run_dir  # pylint: disable=g-import-not-at-top

    with flagutil.one_line_errors():
      path = run_dir.restore_run_json(FLAGS.model_dir, FLAGS.checkpoint)
    print(f"wrote {path} from the config of its checkpoint")
    return
  if not FLAGS.export_dir:
    flagutil.fail("flag --export_dir=BASE is required (the exports' base directory)")
  # RunDirError, ExportError, an unreadable checkpoint, a full disk: one line.
  with flagutil.one_line_errors():
    limits = options.ServingLimits(**flagutil.option_values(options.ServingLimits, FLAGS))
    run = jmvae_tf.load_run(FLAGS.model_dir, FLAGS.checkpoint)
    name = FLAGS.name or run.config.model
    print(f"read {run.describe()}", flush=True)
    path = jmvae_tf.export(run.restore(), FLAGS.export_dir, name, FLAGS.version, limits)
  local = lambda p: p if "://" in p else os.path.abspath(p)
  print(f"exported {local(path)}")
  print("request limits: " + ", ".join(f"{n}={v}" for n, v in vars(limits).items()))
  print(
    f"serve it: tensorflow_model_server --rest_api_port=8501 --model_name={name} "
    f"--model_base_path={local(os.path.join(FLAGS.export_dir, name))}"
  )


if __name__ == "__main__":
  flagutil.run(define_flags, main)
