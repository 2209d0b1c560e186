r"""Times the Table 1 evaluation of one model on the full test set (K = 100, N = 10).

  python benchmarks/evaluate_speed.py --model_dir=/work/runs/jmvae --data_dir=../shared/data/mnist
  python benchmarks/evaluate_speed.py --model=hierarchical_jmvae   # untrained weights, random test bits

Without --model_dir it times a freshly initialised model of --model (the cost does not depend on
the weights); without --data_dir a random binary test set of --num_test images. The first batch
includes tracing the graphs; the last line is machine-readable:

  RESULT evaluate_table1 model=<type> num_test=<n> K=<K> N=<N> seconds=<total> traced_seconds=<first batch>
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A trained model dir (else an untrained --model).")
flags.DEFINE_enum(
  "model",
  "jmvae",
  ["jmvae", "jmvae_kl", "hierarchical_jmvae", "cvae", "cmma"],
  "Model type when --model_dir is unset.",
)
flags.DEFINE_string("data_dir", None, "MNIST IDX directory (else random bits).")
flags.DEFINE_integer("num_test", 10000, "Test examples.")
flags.DEFINE_integer("iterations", 100, "K: iterative-sampling rounds.")
flags.DEFINE_integer("num_samples", 10, "N: samples of z.")
flags.DEFINE_integer("batch_size", 500, "Examples per compiled batch.")


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from jmvae_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from jmvae_tf import run_dir  # pylint: disable=g-import-not-at-top
  from jmvae_tf.evaluation import table  # pylint: disable=g-import-not-at-top
  from pipelines import mnist  # pylint: disable=g-import-not-at-top

  if FLAGS.model_dir:
    model = run_dir.restore_model(FLAGS.model_dir)
    name = run_dir.read_model_config(FLAGS.model_dir).model
  else:
    model_config = config_lib.ModelConfig.make(
      FLAGS.model, mnist.mnist_modalities(), "mnist_mlp", "mnist"
    )
    model, name = config_lib.build_model(model_config), FLAGS.model
  if FLAGS.data_dir:
    arrays = mnist.load_arrays(FLAGS.data_dir)
    images, labels = arrays.test_images[: FLAGS.num_test], arrays.test_labels[: FLAGS.num_test]
  else:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (FLAGS.num_test, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, FLAGS.num_test).astype(np.uint8)
  dataset = mnist.eval_dataset(images, labels, FLAGS.batch_size)
  first = dataset.take(1)
  start = time.perf_counter()
  table.evaluate(
    model, first, num_samples=FLAGS.num_samples, iterations=FLAGS.iterations, progress=False
  )
  traced = time.perf_counter() - start
  start = time.perf_counter()
  result = table.evaluate(
    model, dataset, num_samples=FLAGS.num_samples, iterations=FLAGS.iterations
  )
  seconds = time.perf_counter() - start
  print(
    f"{name}: {result['num_examples']} test examples, K={FLAGS.iterations}, N={FLAGS.num_samples}: "
    f"{seconds:.1f} s ({tf.config.threading.get_intra_op_parallelism_threads() or 'all'} intra-op threads, "
    f"{os.cpu_count()} CPUs)"
  )
  print(
    f"RESULT evaluate_table1 model={name} num_test={result['num_examples']} K={FLAGS.iterations} "
    f"N={FLAGS.num_samples} seconds={seconds:.2f} traced_seconds={traced:.2f}"
  )


if __name__ == "__main__":
  app.run(main)
