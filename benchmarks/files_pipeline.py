r"""The files data set's input pipeline against the built-in one on the same images.

Each configuration runs in a fresh process (so its peak memory is its own), in interleaved
rounds; for each it prints the time to make the data set (read, check and, in memory, decode
every file), the training examples/s the pipeline delivers (drained inside a tf.function as
training reads it; benchmarks/input_pipeline.py's `rate`) and the process's peak resident
memory. Medians over the rounds.

  # Fashion-MNIST: IDX files (--dataset=fashion_mnist) vs PNGs + CSV (--dataset=files),
  # in memory and streamed from the files (in_memory=no)
  python benchmarks/files_pipeline.py --idx_dir=/usr/share/datasets/fashion-mnist \
      --files_dir=/tmp/own/fashion
  # Faces: the CelebA pipeline on a folder in CelebA's layout vs --dataset=files over the
  # same JPEGs (fit=crop to 64x64), e.g. the synthetic faces (runners.synthetic_faces)
  python benchmarks/files_pipeline.py --faces_dir=/tmp/faces
  # Peak memory for N images of each size, in memory and streamed (images written first)
  python benchmarks/files_pipeline.py --sizes=28,64,128 --num_images=20000 --work_dir=/tmp/sizes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def cpu_line() -> str:
  model, flags = platform.processor() or "?", set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name") and model in ("?", ""):
          model = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
          flags = set(line.split(":", 1)[1].split())
  except OSError:
    pass
  shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
  return f"{model}, {os.cpu_count()} cores, {' '.join(shown)}"


def measure(spec: dict) -> dict:
  """In this process: make the data set, drain its training pipeline; time, rate, peak RSS."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  from input_pipeline import rate  # pylint: disable=g-import-not-at-top

  from pipelines import registry  # pylint: disable=g-import-not-at-top

  started = time.perf_counter()
  data = registry.make_dataset(
    spec["dataset"], spec["data_dir"], spec.get("num_train"), options=spec.get("options", ())
  )
  made = time.perf_counter() - started
  dataset = data.train_dataset(spec["batch_size"], seed=0)
  median, _ = rate(dataset, spec["batch_size"], spec["batches"], spec["windows"], 5)
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
  return {"make_s": made, "examples_per_s": median, "peak_mib": peak}


def run(spec: dict) -> dict:
  out = subprocess.run(
    [sys.executable, __file__, "--measure", json.dumps(spec)],
    capture_output=True,
    text=True,
    check=False,
    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
  )
  lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
  if out.returncode or not lines:
    raise SystemExit(f"{spec['name']} failed:\n{out.stderr[-2000:]}")
  return json.loads(lines[-1])


def write_sized_images(work_dir: str, size: int, n: int, idx_dir: str) -> str:
  """n PNGs of size x size (Fashion-MNIST's first images, resized) and a CSV; the folder."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from pipelines.mnist import load_idx_dir  # pylint: disable=g-import-not-at-top

  folder = os.path.join(work_dir, f"png{size}_{n}")
  if os.path.isfile(os.path.join(folder, "dataset.json")):
    return folder
  os.makedirs(os.path.join(folder, "images"), exist_ok=True)
  arrays = load_idx_dir(idx_dir)
  images = np.concatenate([arrays.train_images, arrays.test_images])
  labels = np.concatenate([arrays.train_labels, arrays.test_labels])
  with open(os.path.join(folder, "all.csv"), "w") as f:
    f.write("file,label\n")
    for i in range(n):
      x = tf.image.resize(images[i % len(images)][..., None], (size, size))
      name = f"images/{i:06d}.png"
      tf.io.write_file(os.path.join(folder, name), tf.io.encode_png(tf.cast(x, tf.uint8)))
      f.write(f"{name},{labels[i % len(labels)]}\n")
  spec = {
    "version": 1,
    "modalities": [
      {"name": "image", "kind": "image", "column": "file", "size": [size, size], "channels": 1},
      {"name": "label", "kind": "class", "column": "label"},
    ],
    "files": ["all.csv"],
    "fractions": {"test": 0.1},
  }
  with open(os.path.join(folder, "dataset.json"), "w") as f:
    json.dump(spec, f)
  return folder


def faces_spec(faces_dir: str, work_dir: str) -> str:
  """A files spec over a CelebA-layout folder's JPEGs and attributes (fit=crop to 64x64)."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  from pipelines.celeba import read_folder  # pylint: disable=g-import-not-at-top

  files = read_folder(faces_dir)
  folder = os.path.join(work_dir, "faces_files")
  os.makedirs(folder, exist_ok=True)
  names = [f"a{i}" for i in range(files.attributes.shape[1])]
  with open(os.path.join(folder, "faces.csv"), "w") as f:
    f.write("file," + ",".join(names) + "\n")
    for path, row in zip(files.image_paths, files.attributes):
      f.write(os.path.abspath(path) + "," + ",".join(str(int(v)) for v in np.asarray(row)) + "\n")
  spec = {
    "version": 1,
    "modalities": [
      {"name": "image", "kind": "image", "column": "file", "size": [64, 64], "channels": 3,
       "fit": "crop", "likelihood": "gaussian_fixed"},
      {"name": "attributes", "kind": "attributes", "columns": names},
    ],
    "files": ["faces.csv"],
    "fractions": {"test": 0.1},
  }  # fmt: skip
  with open(os.path.join(folder, "dataset.json"), "w") as f:
    json.dump(spec, f)
  return folder


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--measure", help=argparse.SUPPRESS)
  p.add_argument("--idx_dir", help="Fashion-MNIST's IDX files")
  p.add_argument("--files_dir", help="the same as --dataset=files (docs/write_fashion_as_files.py)")
  p.add_argument("--faces_dir", help="a folder in CelebA's layout")
  p.add_argument("--sizes", default="", help="image sides for the memory table, e.g. 28,64,128")
  p.add_argument("--num_images", type=int, default=20000)
  p.add_argument("--work_dir", default="/tmp/files_pipeline")
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--batches", type=int, default=100)
  p.add_argument("--windows", type=int, default=3)
  args = p.parse_args()
  if args.measure:
    print(json.dumps(measure(json.loads(args.measure))), flush=True)
    return
  common = {"batches": args.batches, "windows": args.windows}
  specs = []
  if args.idx_dir and args.files_dir:
    fashion = {"num_train": 50000, "batch_size": 100, **common}
    specs += [
      {"name": "fashion_mnist (IDX)", "dataset": "fashion_mnist", "data_dir": args.idx_dir, **fashion},
      {"name": "files, in memory", "dataset": "files", "data_dir": args.files_dir, **fashion},
      {"name": "files, streamed", "dataset": "files", "data_dir": args.files_dir,
       "options": ["in_memory=no"], **fashion},
    ]  # fmt: skip
  if args.faces_dir:
    faces = {"batch_size": 64, **common}
    folder = faces_spec(args.faces_dir, args.work_dir)
    specs += [
      {"name": "celeb_a (folder)", "dataset": "celeb_a", "data_dir": args.faces_dir, **faces},
      {"name": "files faces, in memory", "dataset": "files", "data_dir": folder, **faces},
      {"name": "files faces, streamed", "dataset": "files", "data_dir": folder,
       "options": ["in_memory=no"], **faces},
    ]  # fmt: skip
  for size in [int(s) for s in args.sizes.split(",") if s]:
    folder = write_sized_images(args.work_dir, size, args.num_images, args.idx_dir)
    sized = {"batch_size": 100, **common}
    for memory in ("yes", "no"):
      specs.append(
        {"name": f"{args.num_images} PNGs {size}x{size}, in_memory={memory}", "dataset": "files",
         "data_dir": folder, "options": [f"in_memory={memory}"], **sized}
      )  # fmt: skip
  print(f"CPU: {cpu_line()}", flush=True)
  results = {s["name"]: [] for s in specs}
  for r in range(args.rounds):
    for spec in specs:
      results[spec["name"]].append(run(spec))
      print(f"round {r + 1} {spec['name']}: {results[spec['name']][-1]}", flush=True)
  print("| pipeline | make the data set (s) | training examples/s | peak memory (MiB) |")
  print("|---|---|---|---|")
  for name, rows in results.items():
    med = {k: statistics.median(x[k] for x in rows) for k in rows[0]}
    print(
      f"| {name} | {med['make_s']:.1f} | {med['examples_per_s']:,.0f} | {med['peak_mib']:,.0f} |"
    )


if __name__ == "__main__":
  main()
