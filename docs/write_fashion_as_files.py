r"""Writes Fashion-MNIST out as a user would keep it: a folder of PNGs and a CSV of labels per
split, and the dataset.json that --dataset=files reads (docs/OWN_DATA.md's cross-check).

  python docs/write_fashion_as_files.py --idx_dir=/usr/share/datasets/fashion-mnist \
      --output_dir=/tmp/own/fashion

train/00000.png ... in the IDX files' order, train.csv and test.csv with columns file, label
(the class's name, e.g. "ankle boot", listed in dataset.json in the IDX label order, so the
class indices are the IDX labels). About 20 s for the 70,000 images on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Fashion-MNIST's classes, in the order of its labels 0-9 (its README).
CLASS_NAMES = (
  "t-shirt/top", "trouser", "pullover", "dress", "coat",
  "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--idx_dir", required=True, help="Fashion-MNIST's four IDX files")
  p.add_argument("--output_dir", required=True)
  p.add_argument("--num_train", type=int, default=None, help="the first N training images only")
  p.add_argument("--num_test", type=int, default=None, help="the first N test images only")
  args = p.parse_args()

  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from pipelines.mnist import load_idx_dir  # pylint: disable=g-import-not-at-top

  arrays = load_idx_dir(args.idx_dir)
  parts = {
    "train": (arrays.train_images, arrays.train_labels, args.num_train),
    "test": (arrays.test_images, arrays.test_labels, args.num_test),
  }
  for split, (images, labels, n) in parts.items():
    images, labels = images[:n], labels[:n]
    os.makedirs(os.path.join(args.output_dir, split), exist_ok=True)
    with open(os.path.join(args.output_dir, f"{split}.csv"), "w", newline="") as f:
      writer = csv.writer(f)
      writer.writerow(["file", "label"])
      for i, (image, label) in enumerate(zip(images, labels)):
        name = f"{split}/{i:05d}.png"
        tf.io.write_file(os.path.join(args.output_dir, name), tf.io.encode_png(image[..., None]))
        writer.writerow([name, CLASS_NAMES[label]])
    print(f"wrote {len(images)} {split} images and {split}.csv")
  spec = {
    "version": 1,
    "description": "Fashion-MNIST written out as PNGs and CSVs (docs/write_fashion_as_files.py)",
    "modalities": [
      {"name": "image", "kind": "image", "column": "file", "size": [28, 28], "channels": 1},
      {"name": "label", "kind": "class", "column": "label", "classes": list(CLASS_NAMES)},
    ],
    "splits": {"train": "train.csv", "test": "test.csv"},
  }
  with open(os.path.join(args.output_dir, "dataset.json"), "w") as f:
    json.dump(spec, f, indent=2)
  print(f"wrote {os.path.join(args.output_dir, 'dataset.json')}")


if __name__ == "__main__":
  main()
