r"""JMVAE-kl on three modalities beside MultiVae's JMVAE, at an equal budget: a MNIST digit, a
Fashion-MNIST item of its class and the label, the same networks, epochs, batch size, learning
rate and warm-up; both scored on the same test pairs with this project's classifiers.

  python benchmarks/mnist_fashion_peer.py --peer_python=/work/peer-venv/bin/python \
      --data_dir=../shared/data/mnist --fashion_dir=/usr/share/datasets/fashion-mnist \
      --epochs=10 --work_dir=/tmp/mnist_fashion_peer

Ours: `runners.train --flagfile=configs/mnist_fashion_jmvae_kl.flags` then `runners.evaluate`
(eq 11 with N = 10, coherence), in subprocesses. The peer: benchmarks/multivae_mnist_fashion_peer.py
in the peer venv (MultiVae's JMVAE: unimodal encoders only, a pair read off the product of its
two encoders' Gaussians), which writes what it generates; this script reads it with the same
classifiers (pipelines' real training images, cached) and prints both side by side with the
CPU, the training time and the inference each uses.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run(cmd, **kwargs):
  started = time.perf_counter()
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kwargs)
  if proc.returncode:
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
  return proc.stdout, time.perf_counter() - started


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--peer_python", required=True, help="python of the venv with torch and multivae")
  p.add_argument("--data_dir", default=os.path.join(ROOT, "..", "shared", "data", "mnist"))
  p.add_argument("--fashion_dir", default="/usr/share/datasets/fashion-mnist")
  p.add_argument("--epochs", type=int, default=10)
  p.add_argument("--warmup_epochs", type=int, default=5)
  p.add_argument("--work_dir", required=True, help="where both runs and their outputs go")
  p.add_argument("--model_dir", default=None, help="an already trained run of ours to score")
  args = p.parse_args()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  os.makedirs(args.work_dir, exist_ok=True)

  import numpy as np

  from jmvae_tf.evaluation import coherence
  from jmvae_tf.training import hardware
  from pipelines.mnist_fashion import MnistFashionDataSet

  print(f"CPU: {hardware.describe_cpu().describe()}", flush=True)
  data = MnistFashionDataSet(args.data_dir, fashion_dir=args.fashion_dir)
  n = data.num_examples("test")
  test = next(iter(data.eval_dataset("test", n)))
  test_npz = os.path.join(args.work_dir, "test.npz")
  np.savez(test_npz, **{k: v.numpy() for k, v in test.items()})
  truth = data.labels("test", n)

  ours_dir = args.model_dir or os.path.join(args.work_dir, "ours")
  ours_seconds = None
  common = [f"--data_dir={args.data_dir}", f"--data_options=fashion_dir={args.fashion_dir}"]
  if not args.model_dir:
    _, ours_seconds = run(
      [
        sys.executable,
        "-m",
        "runners.train",
        "--flagfile=configs/mnist_fashion_jmvae_kl.flags",
        *common,
        f"--model_dir={ours_dir}",
        f"--epochs={args.epochs}",
        f"--warmup_epochs={args.warmup_epochs}",
        f"--eval_every={args.epochs}",
        "--verbose=0",
      ]
    )
  run(
    [
      sys.executable,
      "-m",
      "runners.evaluate",
      f"--model_dir={ours_dir}",
      f"--data_dir={args.data_dir}",
      "--noprogress",
    ]
  )
  with open(os.path.join(ours_dir, "evaluation.json")) as f:
    ours = json.load(f)

  peer_out = os.path.join(args.work_dir, "multivae.npz")
  run(
    [
      args.peer_python,
      "benchmarks/multivae_mnist_fashion_peer.py",
      f"--mnist_dir={args.data_dir}",
      f"--fashion_dir={args.fashion_dir}",
      f"--test_npz={test_npz}",
      f"--output={peer_out}",
      f"--epochs={args.epochs}",
      f"--warmup={args.warmup_epochs}",
    ]
  )
  generated = dict(np.load(peer_out))
  with open(os.path.splitext(peer_out)[0] + ".json") as f:
    peer = json.load(f)
  classifiers = coherence.image_classifiers(data)
  readers = {m.name: coherence.make_reader(m, classifiers) for m in data.modalities}
  shapes = {m.name: m.shape for m in data.modalities}

  def read(name, values):
    return readers[name](values.reshape((-1,) + shapes[name]))

  peer_coherence = {
    key: float(coherence.accuracy(read(key.split("|")[0], value), truth).mean())
    for key, value in generated.items()
    if not key.startswith("prior/")
  }
  prior = [read(m.name, generated[f"prior/{m.name}"]) for m in data.modalities]
  peer_prior = float(np.mean(np.all([r == prior[0] for r in prior[1:]], axis=0)))

  print(
    "\nthe classifiers: "
    + "; ".join(f"{name} test accuracy {c.test_accuracy:.4f}" for name, c in classifiers.items())
  )
  print(
    f"training, {args.epochs} epochs of 50,000: ours "
    + (f"{ours_seconds:.0f} s (the command, start-up included)" if ours_seconds else "(given)")
    + f", MultiVae's {peer['train_seconds']:.0f} s (its loop)"
  )
  print(
    "\n| target given | eq 11 log-likelihood, ours | MultiVae's | coherence, ours | MultiVae's "
    "| z from, MultiVae |"
  )
  print("|---|---|---|---|---|---|")
  for key in sorted(peer_coherence):
    print(
      f"| {key} | {ours['values'][key]:.2f} | {peer['values'][key]:.2f} | "
      f"{ours['coherence']['pairs'][key]:.4f} | {peer_coherence[key]:.4f} | {peer['inference'][key]} |"
    )
  print(f"| all, jointly (z ~ p(z)) | | | {ours['coherence']['prior']:.4f} | {peer_prior:.4f} | |")
  with open(os.path.join(args.work_dir, "side_by_side.json"), "w") as f:
    json.dump(
      {
        "ours": ours,
        "multivae": {**peer, "coherence": peer_coherence, "prior": peer_prior},
        "ours_train_seconds": ours_seconds,
      },
      f,
      indent=2,
    )


if __name__ == "__main__":
  main()
