r"""Times the paper's evaluation of one model, estimator by estimator: Table 1 (MNIST, K = 100)
or Table 2 (CelebA networks, K = 40, with the attributes predicted from the image), N = 10.

  python benchmarks/evaluate_speed.py --model=jmvae                      # Table 1, untrained
  python benchmarks/evaluate_speed.py --family=celeba --model=jmvae --num_test=500
  python benchmarks/evaluate_speed.py --model_dir=/work/runs/jmvae --data_dir=../shared/data/mnist

Without --model_dir it times a freshly initialised model of --model (the cost does not depend on
the weights; CelebA's from configs/celeba_<model>.flags, no files needed); without --data_dir
(MNIST only) a random test set of --num_test examples (CelebA: always random faces in [-1, 1]
and attributes +-1). Each estimator is run once on one batch first (tracing, not counted), then
timed over every batch; the share of each in the total is printed, with the CPU, and the last
lines are machine-readable:

  RESULT evaluate_estimator family=<f> model=<type> estimator=<key> seconds=<s> share=<fraction>
  RESULT evaluate_table family=<f> model=<type> num_test=<n> K=<K> N=<N> seconds=<total>
"""

from __future__ import annotations

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("family", "mnist", ["mnist", "celeba"], "Table 1 (mnist) or Table 2 (celeba).")
flags.DEFINE_string("model_dir", None, "A trained model dir (else an untrained --model).")
flags.DEFINE_enum(
  "model",
  "jmvae",
  ["jmvae", "jmvae_kl", "hierarchical_jmvae", "cvae", "cmma", "jmvae_kl_gan"],
  "Model type when --model_dir is unset.",
)
flags.DEFINE_string("data_dir", None, "MNIST IDX directory (else random bits).")
flags.DEFINE_integer("num_test", 10000, "Test examples.")
flags.DEFINE_integer("iterations", None, "K: iterative-sampling rounds (default: the table's).")
flags.DEFINE_integer("num_samples", 10, "N: samples of z.")
flags.DEFINE_integer("batch_size", 500, "Examples per compiled batch (runners.evaluate's).")


def _model_and_data(tf, np):
  from jmvae_tf.models import config as config_lib  # pylint: disable=g-import-not-at-top
  from jmvae_tf.training import run_dir  # pylint: disable=g-import-not-at-top
  from pipelines import mnist  # pylint: disable=g-import-not-at-top

  n = FLAGS.num_test
  if FLAGS.family == "celeba":
    from benchmarks import celeba_step  # pylint: disable=g-import-not-at-top

    model = run_dir.load(FLAGS.model_dir) if FLAGS.model_dir else None
    if model is None:
      model, _ = celeba_step.build_model(FLAGS.model)
      model.initialize()
    rng = tf.random.Generator.from_seed(1)
    data = {
      "image": rng.uniform([n, 64, 64, 3], -1.0, 1.0),
      "attributes": tf.sign(rng.uniform([n, 40], -1.0, 1.0)),
    }
    return model, tf.data.Dataset.from_tensor_slices(data).batch(FLAGS.batch_size)
  if FLAGS.model_dir:
    model = run_dir.load(FLAGS.model_dir)
  else:
    model_config = config_lib.ModelConfig.make(
      FLAGS.model, mnist.mnist_modalities(), "mnist_mlp", "mnist"
    )
    model = config_lib.build_model(model_config)
  if FLAGS.data_dir:
    arrays = mnist.load_arrays(FLAGS.data_dir)
    images, labels = arrays.test_images[:n], arrays.test_labels[:n]
  else:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
  return model, mnist.eval_dataset(images, labels, FLAGS.batch_size)


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from jmvae_tf.evaluation import table  # pylint: disable=g-import-not-at-top
  from jmvae_tf.training import hardware  # pylint: disable=g-import-not-at-top

  print(f"CPU: {hardware.describe_cpu().describe()}", flush=True)
  definition = table.TABLES["celeb_a" if FLAGS.family == "celeba" else "mnist"]
  model, dataset = _model_and_data(tf, np)
  definition = definition.bind(model.modality_names)
  k = definition.iterations if FLAGS.iterations is None else FLAGS.iterations
  first = dataset.take(1)
  # Each estimator as runners.evaluate runs it (table.evaluate one column at a time; the
  # attributes predicted from the image as table.attribute_accuracy), so that one's time is
  # its own: the seeds differ from a whole-table run's, the cost does not.
  runs = {
    c.key: (
      lambda data, c=c: table.evaluate(model, data, [c], FLAGS.num_samples, k, progress=False)
    )
    for c in table.columns_for(model, definition.columns)
  }
  if table.supports_accuracy(model, definition.accuracy):
    runs[f"accuracy {definition.accuracy.target}|{','.join(definition.accuracy.given)}"] = (
      lambda data: table.attribute_accuracy(model, data, definition.accuracy, k)
    )
  seconds = {}
  for key, run in runs.items():
    run(first)  # tracing
    start = time.perf_counter()
    run(dataset)
    seconds[key] = time.perf_counter() - start
    print(f"{key}: {seconds[key]:.2f} s", flush=True)
  total = sum(seconds.values())
  print(
    f"\n{type(model).__name__} ({FLAGS.family}): {FLAGS.num_test} test examples, K={k}, "
    f"N={FLAGS.num_samples}, batch {FLAGS.batch_size}: {total:.1f} s"
  )
  for key, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
    print(f"  {key:<28} {s:8.2f} s  {s / total:6.1%}")
  for key, s in seconds.items():
    print(
      f"RESULT evaluate_estimator family={FLAGS.family} model={model.name} "
      f"estimator={key.replace(' ', '_')} seconds={s:.2f} share={s / total:.3f}"
    )
  print(
    f"RESULT evaluate_table family={FLAGS.family} model={model.name} num_test={FLAGS.num_test} "
    f"K={k} N={FLAGS.num_samples} seconds={total:.2f}"
  )


if __name__ == "__main__":
  app.run(main)
