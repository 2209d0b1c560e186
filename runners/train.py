r"""Trains one of the paper's models.

  python -m runners.train --flagfile=configs/mnist_jmvae_kl.flags \
      --data_dir=../shared/data/mnist --model_dir=/tmp/jmvae_kl --epochs=10

Running it again with the same --model_dir resumes from the last checkpoint.
"""

from __future__ import annotations

import os

from absl import app, flags

from jmvae_tf import registry
from runners import flagutil

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
  # Model.
  flags.DEFINE_enum("model", "jmvae_kl", list(registry.MODEL_NAMES), "Objective to train.", **d)
  flags.DEFINE_integer("latent_dim", 64, "Size of z (2 for the paper's Figure 5).", **d)
  flags.DEFINE_float("alpha", 1.0, "JMVAE-kl weight of the KL(q(z|x,w)||q(z|.)) terms (arXiv/MultiVae: 0.1).", **d)
  flags.DEFINE_bool("anneal_alpha", False, "Warm up the alpha terms too (MultiVae does).", **d)
  flags.DEFINE_enum("alpha_reduction", "sum", ["sum", "mean"], "Combine the alpha terms by sum or mean.", **d)
  flags.DEFINE_integer("num_layers", 2, "Stochastic layers of hierarchical JMVAE.", **d)
  flags.DEFINE_string("target", "image", "CVAE/CMMA: the modality generated.", **d)
  flags.DEFINE_string("condition", "label", "CVAE/CMMA: the modality conditioned on.", **d)
  flags.DEFINE_integer("seed", 0, "Seed of the model's initialisation and sampling.", **d)
  # Data.
  flags.DEFINE_string("data_dir", None, "Directory of the four MNIST-format IDX files; TFDS when unset.", **d)
  flags.DEFINE_enum("tfds_name", "mnist", ["mnist", "fashion_mnist"], "TFDS data set when --data_dir is unset.", **d)
  flags.DEFINE_integer("num_train", 50000, "Training examples: the first N training images.", **d)
  flags.DEFINE_bool("validation", False, "Evaluate on the training images after --num_train instead of test.", **d)
  flags.DEFINE_integer("data_seed", 0, "Seed of shuffling and stochastic binarisation.", **d)
  # Optimisation.
  flags.DEFINE_string("model_dir", None, "Where checkpoints, summaries and the resolved flags go.", **d)
  flags.DEFINE_integer("epochs", 2000, "Total epochs (a resumed run continues up to this).", **d)
  flags.DEFINE_integer("batch_size", 100, "Global batch size.", **d)
  flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.", **d)
  flags.DEFINE_float("adam_epsilon", 1e-7, "Adam epsilon (the authors' code: 1e-4).", **d)
  flags.DEFINE_float("clipnorm", None, "Clip the global gradient norm (the authors' code: 5).", **d)
  flags.DEFINE_integer("warmup_epochs", 200, "KL warm-up: weight rises 0 -> 1 over these epochs.", **d)
  flags.DEFINE_integer("eval_every", 10, "Evaluate the held-out set every N epochs.", **d)
  flags.DEFINE_bool("jit_compile", False, "Compile each replica's forward and backward pass with XLA.", **d)
  flags.DEFINE_integer("intra_op_threads", -1, "TF intra-op threads; -1: half the cores when there is no GPU, "
                       "0: TensorFlow's default.", **d)
  flags.DEFINE_integer("inter_op_threads", 0, "TF inter-op threads; 0: TensorFlow's default.", **d)
  flags.DEFINE_integer("steps_per_execution", 50, "Training steps per call into the compiled graph.", **d)
  flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16"],
                    "Keras dtype policy: mixed_bfloat16 runs hidden layers in bfloat16 (heads stay float32).", **d)
  flags.DEFINE_enum("strategy", "mirrored", ["mirrored", "default", "one_device", "multi_worker"],
                    "tf.distribute strategy.", **d)
  flags.DEFINE_integer("verbose", 1, "Keras verbosity: 1 progress bar, 2 one line per epoch, 0 silent.", **d)
  flags.mark_flag_as_required("model_dir", flag_values=fv)


def model_config_from_flags(fv=FLAGS):
  from jmvae_tf import config as config_lib, modalities as modalities_lib  # pylint: disable=g-import-not-at-top
  return config_lib.ModelConfig(
      model=fv.model, modalities=modalities_lib.mnist_modalities(), latent_dim=fv.latent_dim, seed=fv.seed,
      alpha=fv.alpha, anneal_alpha=fv.anneal_alpha, alpha_reduction=fv.alpha_reduction,
      num_layers=fv.num_layers, target=fv.target, condition=fv.condition)


def train_config_from_flags(fv=FLAGS):
  from jmvae_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  return config_lib.TrainConfig(
      epochs=fv.epochs, batch_size=fv.batch_size, learning_rate=fv.learning_rate, adam_epsilon=fv.adam_epsilon,
      clipnorm=fv.clipnorm, warmup_epochs=fv.warmup_epochs, eval_every=fv.eval_every, data_seed=fv.data_seed,
      jit_compile=fv.jit_compile, steps_per_execution=fv.steps_per_execution, strategy=fv.strategy,
      precision=fv.precision)


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  # Every check that can fail runs before any training or any write to model_dir;
  # TensorFlow is imported only now, so bad flags are reported without its start-up noise.
  from pipelines import idx, mnist  # pylint: disable=g-import-not-at-top
  from jmvae_tf import training  # pylint: disable=g-import-not-at-top
  training.configure_cpu_threads(FLAGS.intra_op_threads, FLAGS.inter_op_threads)
  try:
    model_config = model_config_from_flags()
    train_config = train_config_from_flags()
    training.check_model_dir(FLAGS.model_dir, model_config)
    splits = mnist.split(mnist.load_arrays(FLAGS.data_dir, FLAGS.tfds_name), FLAGS.num_train, FLAGS.validation)
  except (ValueError, idx.IdxError, mnist.DataError) as e:
    flagutil.fail(str(e))
  held_out = splits.validation or splits.test
  train = splits.train
  eval_ds = mnist.eval_dataset(held_out.images, held_out.labels, train_config.batch_size, seed=train_config.data_seed)
  probe = next(iter(mnist.eval_dataset(held_out.images[:1000], held_out.labels[:1000], 1000,
                                       seed=train_config.data_seed)))
  training.train(
      model_config, train_config, FLAGS.model_dir,
      train_dataset_fn=lambda start: mnist.train_dataset(train.images, train.labels, train_config.batch_size,
                                                         seed=train_config.data_seed, start_epoch=start),
      steps_per_epoch=mnist.steps_per_epoch(train.num_examples, train_config.batch_size),
      eval_dataset=eval_ds, probe_batch=probe, flags_text=FLAGS.flags_into_string(), verbose=FLAGS.verbose)
  print(f"checkpoints and TensorBoard logs in {os.path.abspath(FLAGS.model_dir)}")


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=flagutil.parse_or_exit)
