r"""How much each modality moves a joint model's posterior on mnist_fashion: the evidence in
docs/THREE_MODALITIES.md that plain JMVAE's joint encoder learns to ignore the label (which
either image already gives), so that q(z|0,0,label) carries almost no class.

For 1,000 test examples it prints the median distance the mean of q(z|digit,fashion,label)
moves when one modality is replaced by the previous example's, and how far the ten labels' means
of q(z|0,0,label) lie from their centre, beside the median norm of the posterior mean.

  python docs/label_ignored.py --model_dirs=runs/mnist_fashion_jmvae,runs/mnist_fashion_jmvae_kl \
      --data_dir=../shared/data/mnist
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--model_dirs", required=True, help="comma-separated mnist_fashion runs")
  p.add_argument("--data_dir", required=True, help="MNIST's IDX files")
  p.add_argument("--num_examples", type=int, default=1000)
  args = p.parse_args()

  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from jmvae_tf.training import run_dir  # pylint: disable=g-import-not-at-top
  from pipelines import registry  # pylint: disable=g-import-not-at-top

  for model_dir in args.model_dirs.split(","):
    run = run_dir.load_run(model_dir)
    model = run.restore()
    data = registry.make_dataset(run.config.dataset, args.data_dir, options=run.data_options)
    n = args.num_examples
    batch = next(iter(data.eval_dataset("test", n, num_examples=n)))
    names = model.modality_names
    mean, _ = model.posterior(batch, names)
    moves = []
    for name in names:
      swapped = dict(batch, **{name: tf.roll(batch[name], 1, axis=0)})
      moved, _ = model.posterior(swapped, names)
      moves.append(f"{name} {np.median(tf.norm(moved - mean, axis=1).numpy()):.2f}")
    labels_only = {k: (v if k == "label" else tf.zeros_like(v)) for k, v in batch.items()}
    label_mean = model.posterior(labels_only, names)[0].numpy()
    classes = np.argmax(batch["label"].numpy(), axis=1)
    centroids = np.stack([label_mean[classes == c].mean(0) for c in range(10)])
    spread = np.linalg.norm(centroids - centroids.mean(0), axis=1).mean()
    norm = np.median(np.linalg.norm(mean.numpy(), axis=1))
    print(
      f"{run.config.model} ({model_dir}): replacing one modality moves the posterior mean by "
      f"a median {', '.join(moves)}; the labels' means of q(z|0,0,label) lie {spread:.2f} "
      f"from their centre; median posterior mean norm {norm:.2f}"
    )


if __name__ == "__main__":
  main()
