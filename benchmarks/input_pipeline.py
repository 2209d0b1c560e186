r"""The input pipelines alone, without a model: training examples/s they can deliver.

* MNIST: `MnistDataSet.train_dataset` (stateless shuffle, stochastic binarisation,
  batching, all from the images held in memory).
* CelebA layout: `CelebADataSet.train_dataset` on a folder of JPEG files (read,
  decode, crop, resize, shuffle, batch), e.g. the synthetic faces in CelebA's layout.

Each pipeline is drained inside a tf.function, as training reads it (no Python per
batch), after `--warmup_batches` untimed batches, in `--windows` timed windows; the
median is printed. `--train_mnist` / `--train_celeba`
(examples/s the training step consumes, from train_throughput.py) add the ratio
pipeline / training: the goals are >= 10x (MNIST) and >= 3x (CelebA).

  python benchmarks/input_pipeline.py --mnist_dir=../shared/data/mnist \
      --celeba_dir=/work/cmp/faces
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def rate(dataset, batch_size: int, batches: int, windows: int, warmup_batches: int):
  """Median examples/s of draining `batches` batches of `dataset` inside a tf.function,
  the way a training step reads them (no Python per batch)."""
  import tensorflow as tf

  iterator = iter(dataset)

  @tf.function
  def drain(n):
    total = tf.constant(0.0)
    for _ in tf.range(n):
      batch = next(iterator)
      total += tf.add_n([tf.reduce_sum(tf.cast(v, tf.float32)[:1]) for v in batch.values()])
    return total

  drain(tf.constant(warmup_batches)).numpy()
  rates = []
  for _ in range(windows):
    started = time.perf_counter()
    drain(tf.constant(batches)).numpy()
    rates.append(batches * batch_size / (time.perf_counter() - started))
  return statistics.median(rates), rates


def report(name: str, median: float, rates, train_rate, goal: float):
  line = (
    f"RESULT input_pipeline data={name} examples_per_sec={median:.0f} "
    f"windows={'/'.join(f'{r:.0f}' for r in rates)}"
  )
  if train_rate:
    ratio = median / train_rate
    line += f" training={train_rate:.0f} ratio={ratio:.1f}x goal={goal:g}x"
    line += " met" if ratio >= goal else " NOT met"
  print(line, flush=True)


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--mnist_dir", default=os.path.join(ROOT, "..", "shared", "data", "mnist"))
  p.add_argument("--celeba_dir", default="/work/cmp/faces", help="'' to skip CelebA")
  p.add_argument("--batch_size", type=int, default=100)
  p.add_argument("--mnist_batches", type=int, default=2000, help="batches per timed window")
  p.add_argument("--celeba_batches", type=int, default=30, help="batches per timed window")
  p.add_argument("--windows", type=int, default=3)
  p.add_argument("--warmup_batches", type=int, default=10)
  p.add_argument("--train_mnist", type=float, default=None, help="training examples/s, MNIST")
  p.add_argument("--train_celeba", type=float, default=None, help="training examples/s, CelebA")
  args = p.parse_args()

  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  from jmvae_tf.training import hardware

  print(f"CPU: {hardware.describe_cpu().describe()}", flush=True)
  from pipelines import celeba, mnist

  if args.mnist_dir:
    data = mnist.MnistDataSet(args.mnist_dir)
    dataset = data.train_dataset(args.batch_size, seed=0)
    median, rates = rate(
      dataset, args.batch_size, args.mnist_batches, args.windows, args.warmup_batches
    )
    report("mnist", median, rates, args.train_mnist, 10)
  if args.celeba_dir:
    data = celeba.CelebADataSet(args.celeba_dir)
    dataset = data.train_dataset(args.batch_size, seed=0)
    median, rates = rate(
      dataset, args.batch_size, args.celeba_batches, args.windows, args.warmup_batches
    )
    report(f"celeba_jpeg_folder({args.celeba_dir})", median, rates, args.train_celeba, 3)


if __name__ == "__main__":
  main()
