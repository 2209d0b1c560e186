r"""Trains one of the paper's models.

  python -m runners.train --flagfile=configs/mnist_jmvae_kl.flags \
      --data_dir=../shared/data/mnist --model_dir=/tmp/jmvae_kl --epochs=10

Running it again with the same --model_dir resumes from the last checkpoint.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from jmvae_tf import registry
from runners import flagutil

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
  # Model.
  flags.DEFINE_enum("model", "jmvae_kl", list(registry.MODEL_NAMES), "Objective to train.", **d)
  flags.DEFINE_integer("latent_dim", 64, "Size of z (2 for the paper's Figure 5).", **d)
  flags.DEFINE_float(
    "decoder_variance",
    1.0,
    "Variance of the fixed-variance Gaussian decoders (CelebA's; the paper: 1).",
    **d,
  )
  flags.DEFINE_float(
    "alpha", 1.0, "JMVAE-kl weight of the KL(q(z|x,w)||q(z|.)) terms (arXiv/MultiVae: 0.1).", **d
  )
  flags.DEFINE_bool("anneal_alpha", False, "Warm up the alpha terms too (MultiVae does).", **d)
  flags.DEFINE_enum(
    "alpha_reduction", "sum", ["sum", "mean"], "Combine the alpha terms by sum or mean.", **d
  )
  flags.DEFINE_float(
    "gan_gamma", 1.0, "JMVAE-kl-GAN: weight of the image likelihood in the decoder's loss.", **d
  )
  flags.DEFINE_enum(
    "gan_likelihood",
    "features",
    ["features", "pixels"],
    "JMVAE-kl-GAN image likelihood: in the discriminator's features (Larsen et al.) or "
    "pixels (the authors' code).",
    **d,
  )
  flags.DEFINE_enum(
    "gan_prior",
    "normal",
    ["normal", "uniform"],
    "JMVAE-kl-GAN: z of the generated fakes, N(0,I) or uniform(-1,1) (the authors' code).",
    **d,
  )
  flags.DEFINE_enum(
    "gan_discriminator",
    "paper",
    ["paper", "authors"],
    "JMVAE-kl-GAN discriminator: BatchNorm+ReLU (paper) or leaky ReLU, no BatchNorm (authors).",
    **d,
  )
  flags.DEFINE_float(
    "gan_beta1", 0.9, "JMVAE-kl-GAN: Adam beta1 of its three optimisers (authors: 0.5).", **d
  )
  flags.DEFINE_integer("num_layers", 2, "Stochastic layers of hierarchical JMVAE.", **d)
  flags.DEFINE_string("target", "image", "CVAE/CMMA: the modality generated.", **d)
  flags.DEFINE_string("condition", "label", "CVAE/CMMA: the modality conditioned on.", **d)
  flags.DEFINE_integer("seed", 0, "Seed of the model's initialisation and sampling.", **d)
  # Data.
  flagutil.define_data_flags(fv)
  flags.DEFINE_integer(
    "num_train",
    None,
    "Training examples: the first N (default: the data set's; MNIST 50,000 as the paper).",
    lower_bound=1,
    **d,
  )
  flags.DEFINE_bool(
    "validation", False, "Evaluate on the training images after --num_train instead of test.", **d
  )
  flags.DEFINE_integer("data_seed", 0, "Seed of shuffling and stochastic binarisation.", **d)
  # Optimisation.
  flags.DEFINE_string(
    "model_dir", None, "Where checkpoints, summaries and the resolved flags go.", **d
  )
  flags.DEFINE_integer("epochs", 2000, "Total epochs (a resumed run continues up to this).", **d)
  flags.DEFINE_integer("batch_size", 100, "Global batch size.", **d)
  flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.", **d)
  flags.DEFINE_float("adam_epsilon", 1e-7, "Adam epsilon (the authors' code: 1e-4).", **d)
  flags.DEFINE_float("clipnorm", None, "Clip the global gradient norm (the authors' code: 5).", **d)
  flags.DEFINE_integer(
    "warmup_epochs", 200, "KL warm-up: weight rises 0 -> 1 over these epochs.", **d
  )
  flags.DEFINE_integer("eval_every", 10, "Evaluate the held-out set every N epochs.", **d)
  flags.DEFINE_bool(
    "jit_compile",
    False,
    "XLA: the whole step on one device, each replica's forward and backward pass under a "
    "distribution strategy (off: slower on the CPUs measured, benchmarks/README.md).",
    **d,
  )
  flags.DEFINE_integer(
    "intra_op_threads",
    -1,
    "TF intra-op threads; -1: half the cores when there is no GPU and no XLA, else "
    "TensorFlow's default; 0: TensorFlow's default.",
    **d,
  )
  flags.DEFINE_integer("inter_op_threads", 0, "TF inter-op threads; 0: TensorFlow's default.", **d)
  flags.DEFINE_integer(
    "input_threads",
    -1,
    "tf.data threads of the input pipeline, a private pool without autotuning; -1: half "
    "the cores when there is no GPU, else 0; 0: tf.data's own autotuned pool.",
    lower_bound=-1,
    **d,
  )
  flags.DEFINE_integer(
    "steps_per_execution", 50, "Training steps per call into the compiled graph.", **d
  )
  flags.DEFINE_integer(
    "recalibrate_batchnorm",
    0,
    "After the last epoch, set BatchNorm's moving statistics (what inference normalises "
    "with) to their average over this many training batches; 0: Keras' moving averages, "
    "which lag short runs (docs/CELEBA.md). One replica only.",
    lower_bound=0,
    **d,
  )
  flags.DEFINE_enum(
    "precision",
    "float32",
    ["float32", "mixed_bfloat16"],
    "Keras dtype policy: mixed_bfloat16 runs hidden layers in bfloat16 (heads stay float32).",
    **d,
  )
  flags.DEFINE_enum(
    "strategy",
    "auto",
    ["auto", "mirrored", "default", "one_device", "multi_worker"],
    "tf.distribute strategy; auto: MirroredStrategy over several GPUs, none on one device.",
    **d,
  )
  flags.DEFINE_integer(
    "verbose", 1, "Keras verbosity: 1 progress bar, 2 one line per epoch, 0 silent.", **d
  )
  flags.mark_flag_as_required("model_dir", flag_values=fv)


def model_config_from_flags(data, fv=FLAGS):
  """The model's config: the options its objective uses, from the flags of the same name, on
  `data`'s modalities and networks (`data`: a pipelines.datasets.DataSet)."""
  from jmvae_tf import config as config_lib  # pylint: disable=g-import-not-at-top

  options = {name: getattr(fv, name) for name in config_lib.option_names(fv.model)}
  return config_lib.ModelConfig.make(
    fv.model, data.modalities, data.architecture, data.name, **options
  )


def train_config_from_flags(fv=FLAGS, data=None):
  """The TrainConfig of the flags; given `data` (a pipelines.datasets.DataSet), with the
  number of training examples it holds and its options, recorded for resumed runs."""
  from jmvae_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from pipelines import datasets  # pylint: disable=g-import-not-at-top

  if data is not None:
    data_options = datasets.parse_options(fv.data_options)
    recorded = dict(
      num_train=data.num_examples("train"),
      data_options=tuple(f"{k}={v}" for k, v in data_options.items()),
    )
  else:
    recorded = {}
  return config_lib.TrainConfig(
    epochs=fv.epochs,
    batch_size=fv.batch_size,
    learning_rate=fv.learning_rate,
    adam_epsilon=fv.adam_epsilon,
    clipnorm=fv.clipnorm,
    warmup_epochs=fv.warmup_epochs,
    eval_every=fv.eval_every,
    data_seed=fv.data_seed,
    jit_compile=fv.jit_compile,
    steps_per_execution=fv.steps_per_execution,
    strategy=fv.strategy,
    precision=fv.precision,
    recalibrate_batchnorm=fv.recalibrate_batchnorm,
    **recorded,
  )


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  # Every check that can fail runs before any training or any write to model_dir;
  # TensorFlow is imported only now, so bad flags are reported without its start-up noise.
  from jmvae_tf import training  # pylint: disable=g-import-not-at-top
  from pipelines import registry  # pylint: disable=g-import-not-at-top

  intra_op, _ = training.configure_cpu_threads(
    FLAGS.intra_op_threads, FLAGS.inter_op_threads, FLAGS.jit_compile
  )
  # DataError, IdxError, RunDirError, OSError: one line. A SIGINT during training is the
  # training loop's (it stops at the next step and saves); this line is for the rest.
  with flagutil.one_line_errors("interrupted by SIGINT before training started or after it ended"):
    # MultiWorkerMirroredStrategy sets up collective ops, which TensorFlow allows only before
    # it runs any op (reading the data does); training.train makes the other strategies.
    strategy = training.make_strategy("multi_worker") if FLAGS.strategy == "multi_worker" else None
    train_config = train_config_from_flags(FLAGS)  # the cheap checks first
    training.check_recalibration(train_config, strategy)
    data = registry.make_dataset(
      FLAGS.dataset, FLAGS.data_dir, FLAGS.num_train, FLAGS.validation, FLAGS.data_options
    )
    train_config = train_config_from_flags(FLAGS, data)
    model_config = model_config_from_flags(data, FLAGS)
    data.check_batch_size(train_config.batch_size)
    training.check_model_dir(FLAGS.model_dir, model_config, train_config)
    input_threads = training.input_threads(FLAGS.input_threads)
    settings = training.speed_settings(
      train_config, FLAGS.intra_op_threads, intra_op, FLAGS.input_threads, input_threads
    )
    if FLAGS.verbose:
      print(settings, flush=True)
      note = training.warmup_note(train_config.epochs, train_config.warmup_epochs)
      if note:
        print(note, flush=True)
    _train(training, data, model_config, train_config, strategy, input_threads)
  print(f"checkpoints and TensorBoard logs in {os.path.abspath(FLAGS.model_dir)}")


def _train(training, data, model_config, train_config, strategy=None, input_threads=0):
  held_out = data.held_out_split()
  seed = train_config.data_seed
  probe = next(
    iter(
      data.eval_dataset(
        held_out, 1000, seed=seed, num_examples=min(1000, data.num_examples(held_out))
      )
    )
  )
  try:
    training.train(
      model_config,
      train_config,
      FLAGS.model_dir,
      train_dataset_fn=lambda start: data.train_dataset(train_config.batch_size, seed, start),
      steps_per_epoch=data.steps_per_epoch(train_config.batch_size),
      eval_dataset=data.eval_dataset(held_out, train_config.batch_size, seed=seed),
      probe_batch=probe,
      flags_text=flagutil.flags_text(FLAGS, define_flags),
      verbose=FLAGS.verbose,
      strategy=strategy,
      input_threads=input_threads,
    )
  except training.TrainingDiverged as e:  # a NaN/inf loss or weight: exit status 1
    if FLAGS.verbose == 1:
      print(flush=True)  # ends Keras' progress bar line
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  except training.TrainingInterrupted as e:  # SIGINT/SIGTERM: 130/143, as the shell's
    if FLAGS.verbose == 1:
      print(flush=True)
    print(f"interrupted: {e}", file=sys.stderr, flush=True)
    status = 128 + e.signum
  else:
    return
  sys.exit(status)  # outside the except clause, its traceback (and training's state) freed


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=flagutil.parse_or_exit)
