r"""One eq 11 estimator of an untrained MNIST JMVAE timed batch by batch, two passes over the
first --num_test test images (the first pass traces), to read an estimator's time without
what else a run does; prints each pass's total and its batches' seconds.

  python benchmarks/evaluate_batches.py --data_dir=../shared/data/mnist --target=label --given=image
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--data_dir", required=True, help="MNIST IDX directory")
  p.add_argument("--target", default="label")
  p.add_argument("--given", default="image")
  p.add_argument("--num_test", type=int, default=5000)
  p.add_argument("--batch_size", type=int, default=500)
  p.add_argument("--iterations", type=int, default=100)
  args = p.parse_args()
  import tensorflow as tf

  from jmvae_tf.evaluation import estimators
  from jmvae_tf.models import config as config_lib
  from jmvae_tf.training import hardware
  from pipelines import mnist

  print(f"CPU: {hardware.describe_cpu().describe()}")
  model = config_lib.build_model(
    config_lib.ModelConfig.make("jmvae", mnist.mnist_modalities(), "mnist_mlp", "mnist")
  )
  arrays = mnist.load_arrays(args.data_dir)
  n = args.num_test
  dataset = mnist.eval_dataset(arrays.test_images[:n], arrays.test_labels[:n], args.batch_size)
  for rep in range(2):
    start, seconds = time.perf_counter(), []
    for i, batch in enumerate(dataset):
      t = time.perf_counter()
      values = estimators.conditional_log_likelihood(
        model, batch, args.target, (args.given,), 10, args.iterations, seed=(0, i)
      )
      float(tf.reduce_sum(values))
      seconds.append(round(time.perf_counter() - t, 2))
    print(f"pass {rep}: {time.perf_counter() - start:.2f} s, batches {seconds}", flush=True)


if __name__ == "__main__":
  sys.exit(main())
