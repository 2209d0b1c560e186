r"""Trains one of the paper's models.

  python -m runners.train --flagfile=configs/mnist_jmvae_kl.flags \
      --data_dir=../shared/data/mnist --model_dir=/tmp/jmvae_kl --epochs=10

Running it again with the same --model_dir resumes from the last checkpoint.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from jmvae_tf.core import options
from jmvae_tf.models import registry
from runners import flagutil

FLAGS = flags.FLAGS
AUTO = options.AUTO


def define_flags(fv: flags.FlagValues = FLAGS):
  """The model's options and the training settings from their dataclasses
  (jmvae_tf/core/options.py, their one source), then the runner's own flags."""
  d = dict(flag_values=fv)
  flagutil.define_plugins_flag(fv)
  names = registry.model_names()
  flags.DEFINE_enum("model", "jmvae_kl", list(names), "Objective to train.", **d)
  flagutil.define_option_flags([registry.entry(n).options for n in names], fv)
  flagutil.define_data_flags(fv)
  flags.DEFINE_string(
    "architecture",
    None,
    "The networks (a registered architecture: mnist_mlp, celeba_conv, generic, or a "
    "plug-in's); unset: the data set's own.",
    **d,
  )
  flags.DEFINE_list(
    "architecture_options",
    [],
    "Options of a builder architecture as key=value,... (generic: hidden=512x512, "
    "channels=32, max_channels=256, depth=auto).",
    **d,
  )
  flagutil.define_option_flags([options.FixedSettings, options.RunSettings], fv)
  flags.DEFINE_bool(
    "validation", False, "Evaluate on the training images after --num_train instead of test.", **d
  )
  flags.DEFINE_string(
    "model_dir", None, "Where checkpoints, summaries and the resolved flags go.", **d
  )
  flags.DEFINE_integer(
    "intra_op_threads",
    AUTO,
    f"TF intra-op threads; {AUTO}: half the cores when there is no GPU and no XLA, else "
    "TensorFlow's default; 0: TensorFlow's default.",
    **d,
  )
  flags.DEFINE_integer("inter_op_threads", 0, "TF inter-op threads; 0: TensorFlow's default.", **d)
  flags.DEFINE_integer(
    "input_threads",
    AUTO,
    f"tf.data threads of the input pipeline, a private pool without autotuning; {AUTO}: half "
    "the cores when there is no GPU, else 0; 0: tf.data's own autotuned pool.",
    lower_bound=AUTO,
    **d,
  )
  flags.DEFINE_integer(
    "verbose", 1, "Keras verbosity: 1 progress bar, 2 one line per epoch, 0 silent.", **d
  )
  flags.mark_flag_as_required("model_dir", flag_values=fv)


def model_config_from_flags(data, fv=FLAGS):
  """The model's config: the options its objective uses, from the flags of the same name, on
  `data`'s modalities and networks (`data`: a jmvae_tf.core.data.DataSet)."""
  from jmvae_tf.models import config as config_lib  # pylint: disable=g-import-not-at-top

  model_options = flagutil.option_values(registry.entry(fv.model).options, fv)
  return config_lib.ModelConfig.make(
    fv.model,
    data.modalities,
    fv.architecture or data.architecture,
    data.name,
    fv.architecture_options,
    **model_options,
  )


def train_config_from_flags(fv=FLAGS) -> options.TrainConfig:
  """The TrainConfig of the flags (a ValueError for a bad value, before TensorFlow starts);
  training records the data set's size, options and fingerprint in it."""
  settings = {
    **flagutil.option_values(options.FixedSettings, fv),
    **flagutil.option_values(options.RunSettings, fv),
  }
  return options.TrainConfig.make(**settings)


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  # DataError, IdxError, RunDirError, OSError: one line. A SIGINT during training is the
  # training loop's (it stops at the next step and saves); this line is for the rest.
  with flagutil.one_line_errors("interrupted by SIGINT before training started or after it ended"):
    # Every check that can fail runs before any training or any write to model_dir: the
    # flags' values first, before TensorFlow starts (without its start-up noise).
    train_config_from_flags(FLAGS)
    import jmvae_tf  # pylint: disable=g-import-not-at-top
    from jmvae_tf.training import callbacks, runtime  # pylint: disable=g-import-not-at-top
    from pipelines import registry as data_registry  # pylint: disable=g-import-not-at-top

    intra_op, _ = runtime.configure_cpu_threads(
      FLAGS.intra_op_threads,
      FLAGS.inter_op_threads,
      runtime.resolve_jit_compile(FLAGS.jit_compile, FLAGS.strategy),
    )
    # MultiWorkerMirroredStrategy sets up collective ops, which TensorFlow allows only before
    # it runs any op (reading the data does); jmvae_tf.train makes the other strategies.
    strategy = runtime.make_strategy("multi_worker") if FLAGS.strategy == "multi_worker" else None
    data = data_registry.make_dataset(
      FLAGS.dataset, FLAGS.data_dir, FLAGS.num_train, FLAGS.validation, FLAGS.data_options
    )
    train_config = train_config_from_flags(FLAGS)
    model_config = model_config_from_flags(data, FLAGS)
    data.check_batch_size(train_config.fixed.batch_size)
    input_threads = runtime.input_threads(FLAGS.input_threads)
    if FLAGS.verbose:
      line = runtime.speed_settings(
        train_config, FLAGS.intra_op_threads, intra_op, FLAGS.input_threads, input_threads
      )
      print(line, flush=True)
    status = _train(jmvae_tf, callbacks, data, model_config, train_config, strategy, input_threads)
  if status:
    sys.exit(status)  # outside the except clause, its traceback (and training's state) freed
  print(f"checkpoints and TensorBoard logs in {os.path.abspath(FLAGS.model_dir)}")


def _train(jmvae_tf, callbacks, data, model_config, train_config, strategy, input_threads):
  """jmvae_tf.train as the flags say; the exit status of a stop (0: none), its line printed."""
  try:
    jmvae_tf.train(
      model_config,
      data,
      FLAGS.model_dir,
      train_config,
      verbose=FLAGS.verbose,
      strategy=strategy,
      input_threads=input_threads,
      flags_text=flagutil.flags_text(FLAGS, define_flags),
    )
  except callbacks.TrainingDiverged as e:  # a NaN/inf loss or weight: exit status 1
    return _stopped(e, "error", 1)
  except callbacks.TrainingInterrupted as e:  # SIGINT/SIGTERM: 130/143, as the shell's
    return _stopped(e, "interrupted", 128 + e.signum)
  return 0


def _stopped(error: Exception, what: str, status: int) -> int:
  if FLAGS.verbose == 1:
    print(flush=True)  # ends Keras' progress bar line
  print(f"{what}: {error}", file=sys.stderr, flush=True)
  return status


if __name__ == "__main__":
  flagutil.run(define_flags, main)
