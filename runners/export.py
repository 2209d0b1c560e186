r"""Exports a trained model as a SavedModel for TF Serving.

  python -m runners.export --model_dir=/tmp/jmvae_kl --export_dir=/tmp/serving
  saved_model_cli show --dir /tmp/serving/jmvae_kl/1 --all

writes EXPORT_DIR/NAME/VERSION/ (NAME: the model name in run.json unless --name;
VERSION: the next free integer from 1 unless --version; an existing version is
never overwritten). The signatures are described in jmvae_tf/serving.py and
docs/SERVING.md. --max_batch_size, --max_num_samples and --max_num_steps bound what one
request may ask (refused beyond them); they are recorded in the export (its `limits`
signature and assets.extra/limits.json).
"""

from __future__ import annotations

import os

from absl import app, flags

from runners import flagutil

FLAGS = flags.FLAGS
# jmvae_tf.serving.ServingLimits' defaults (this runner imports TensorFlow only after parsing;
# tests/test_serving.py checks they agree).
DEFAULT_LIMITS = {"max_batch_size": 1024, "max_num_samples": 1024, "max_num_steps": 1000}


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
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
  flags.DEFINE_integer(
    "max_batch_size",
    DEFAULT_LIMITS["max_batch_size"],
    "Most examples one request may send (larger batches are refused).",
    lower_bound=1,
    **d,
  )
  flags.DEFINE_integer(
    "max_num_samples",
    DEFAULT_LIMITS["max_num_samples"],
    "Most draws one `sample` request may ask for.",
    lower_bound=1,
    **d,
  )
  flags.DEFINE_integer(
    "max_num_steps",
    DEFAULT_LIMITS["max_num_steps"],
    "Most rounds of iterative sampling one request may ask for (JMVAE, hierarchical JMVAE).",
    lower_bound=1,
    **d,
  )
  flags.mark_flags_as_required(["model_dir", "export_dir"], flag_values=fv)


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  from jmvae_tf import serving, training  # pylint: disable=g-import-not-at-top

  # RunDirError, ExportError, an unreadable checkpoint, a full disk: one line.
  with flagutil.one_line_errors():
    config = training.read_model_config(FLAGS.model_dir)
    if config is None:
      raise training.RunDirError(
        f"--model_dir={FLAGS.model_dir} has no {training.RUN_FILE}: "
        "not a model directory of runners.train"
      )
    name = FLAGS.name or config.model
    model = training.restore_model(FLAGS.model_dir, FLAGS.checkpoint)
    path = serving.export(
      model,
      FLAGS.export_dir,
      name,
      FLAGS.version,
      modalities=config.modalities,
      run_config_json=config.to_json(),
      limits=serving.ServingLimits(**{name: getattr(FLAGS, name) for name in DEFAULT_LIMITS}),
    )
  print(f"exported {os.path.abspath(path)}")
  print("request limits: " + ", ".join(f"{n}={getattr(FLAGS, n)}" for n in DEFAULT_LIMITS))
  print(
    f"serve it: tensorflow_model_server --rest_api_port=8501 --model_name={name} "
    f"--model_base_path={os.path.abspath(os.path.join(FLAGS.export_dir, name))}"
  )


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=flagutil.parse_or_exit)
