r"""Steady-state training throughput and peak memory of `runners.train` on MNIST.

For each model it runs the real command line (`python -m runners.train` with the
model's flagfile, batch 100) for a few short epochs in a fresh model directory,
reads the examples/second that the run itself wrote to TensorBoard, drops the
first epoch (tracing and XLA compilation) and reports the median of the rest,
and the peak resident memory of the process.

With --peer_python (a separate venv with torch and multivae, never a dependency
of this project) it also runs MultiVae's JMVAE (the JMVAE-kl objective, same
architecture) through benchmarks/multivae_peer.py, interleaved with ours
round by round, because this machine's speed drifts between runs:

  python benchmarks/train_throughput.py --data_dir=../shared/data/mnist \
      --models=jmvae_kl --rounds=3 --peer_python=/work/peer-venv/bin/python
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("jmvae", "jmvae_kl", "hierarchical_jmvae", "cvae", "cmma")


def run_child(cmd, cwd=ROOT, env=None):
  """Runs cmd; returns (its output, peak RSS of that process in MiB)."""
  proc = subprocess.Popen(
    cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )
  out = proc.stdout.read()
  # wait4, not wait: it returns this child's own resource usage (ru_maxrss in KiB on Linux).
  _, status, usage = os.wait4(proc.pid, 0)
  proc.returncode = os.waitstatus_to_exitcode(status)
  if proc.returncode:
    raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
  return out, usage.ru_maxrss / 1024.0


def epoch_throughputs(model_dir):
  """examples_per_second per epoch, as runners.train logged it."""
  import tensorflow as tf  # only the parent reads events; imported late to keep --help fast

  values = {}
  for path in tf.io.gfile.glob(os.path.join(model_dir, "logs", "train", "events.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag == "examples_per_second":
          values[event.step] = (
            float(tf.make_ndarray(v.tensor)) if v.HasField("tensor") else v.simple_value
          )
  return [values[k] for k in sorted(values)]


def ours(model, args):
  with tempfile.TemporaryDirectory() as model_dir:
    cmd = [
      sys.executable,
      "-m",
      "runners.train",
      f"--flagfile=configs/mnist_{model}.flags",
      f"--data_dir={args.data_dir}",
      f"--model_dir={model_dir}",
      f"--epochs={args.epochs}",
      f"--num_train={args.num_train}",
      "--eval_every=100000",
      "--verbose=0",
      f"--jit_compile={args.jit_compile}",
      f"--steps_per_execution={args.steps_per_execution}",
      f"--precision={args.precision}",
    ] + [a for a in args.extra_flags.split() if a]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    _, peak_mb = run_child(cmd, env=env)
    per_epoch = epoch_throughputs(model_dir)
  steady = per_epoch[1:] or per_epoch
  return statistics.median(steady), peak_mb


def peer(args):
  cmd = [
    args.peer_python,
    os.path.join(ROOT, "benchmarks", "multivae_peer.py"),
    f"--data_dir={args.data_dir}",
    f"--steps={args.peer_steps}",
    f"--warmup_steps={args.peer_warmup_steps}",
    "--repeats=1",
  ]
  out, peak_mb = run_child(cmd)
  match = re.search(r"RESULT multivae_jmvae examples_per_sec=([\d.]+)", out)
  if not match:
    raise RuntimeError(f"no RESULT line from the peer:\n{out[-2000:]}")
  return float(match.group(1)), peak_mb


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument(
    "--data_dir",
    default=os.path.join(ROOT, "..", "shared", "data", "mnist"),
    help="directory of the MNIST IDX files",
  )
  p.add_argument("--models", default=",".join(MODELS), help="comma-separated models to time")
  p.add_argument(
    "--rounds", type=int, default=3, help="repeated runs per model (medians are reported)"
  )
  p.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is dropped")
  p.add_argument("--num_train", type=int, default=50000, help="training images per epoch")
  p.add_argument("--jit_compile", default="false", choices=["true", "false"])
  p.add_argument("--steps_per_execution", type=int, default=50)
  p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
  p.add_argument("--extra_flags", default="", help="more runners.train flags, space-separated")
  p.add_argument(
    "--peer_python",
    default=None,
    help="python of a venv with multivae, to run the peer interleaved",
  )
  p.add_argument("--peer_steps", type=int, default=300)
  p.add_argument(
    "--peer_warmup_steps",
    type=int,
    default=30,
    help="untimed peer steps first; past ~600 steps stock PyTorch slows (Adam state goes subnormal)",
  )
  args = p.parse_args()
  models = [m for m in args.models.split(",") if m]
  for m in models:
    if m not in MODELS:
      p.error(f"--models: unknown model {m!r}; choose from {MODELS}")
  if not os.path.isdir(args.data_dir):
    p.error(f"--data_dir={args.data_dir} is not a directory")

  results = {m: [] for m in models}
  peer_results = []
  started = time.time()
  for r in range(args.rounds):
    for m in models:
      eps, mb = ours(m, args)
      results[m].append((eps, mb))
      print(
        f"round {r + 1}/{args.rounds}  jmvae-tf {m:<20} {eps:8.0f} examples/s  peak {mb:6.0f} MiB",
        flush=True,
      )
      if args.peer_python and m == "jmvae_kl":
        eps, mb = peer(args)
        peer_results.append((eps, mb))
        print(
          f"round {r + 1}/{args.rounds}  MultiVae JMVAE(-kl)     {eps:8.0f} examples/s  peak {mb:6.0f} MiB",
          flush=True,
        )

  print(
    f"\nMedians over {args.rounds} rounds (batch 100, {args.num_train} images/epoch, epoch 1 dropped; "
    f"{time.time() - started:.0f} s in all):"
  )
  print(f"| {'model':<22} | examples/s | peak MiB |")
  print(f"|{'-' * 24}|-----------:|---------:|")
  for m in models:
    print(
      f"| jmvae-tf {m:<13} | {statistics.median(e for e, _ in results[m]):10.0f} | "
      f"{statistics.median(b for _, b in results[m]):8.0f} |"
    )
  if peer_results:
    ours_kl = statistics.median(e for e, _ in results["jmvae_kl"])
    peer_kl = statistics.median(e for e, _ in peer_results)
    print(
      f"| MultiVae JMVAE (-kl)   | {peer_kl:10.0f} | {statistics.median(b for _, b in peer_results):8.0f} |"
    )
    print(
      f"\njmvae-tf JMVAE-kl / MultiVae JMVAE: {ours_kl / peer_kl:.2f}x (medians, interleaved rounds)"
    )


if __name__ == "__main__":
  main()
