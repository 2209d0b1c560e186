r"""Where the time of `runners.train` goes: a TF profiler trace of its steady state.

Runs the real runner in this process (its flags, its data set, `jmvae_tf.train`),
starts `tf.profiler.experimental` when epoch 1 (tracing) has been checkpointed and
stops it when epoch 2 has, so the trace holds one steady-state epoch of
`--num_train / batch` steps. Then it sums the trace's host events by thread and by
name and prints the largest, grouped as: TF ops inside the step, tf.data
(input pipeline), and everything else on the Python thread (Keras fit loop,
callbacks, metrics fetches, summaries).

  python benchmarks/profile_train.py --logdir=/tmp/prof -- \
      --flagfile=configs/mnist_jmvae_kl.flags --num_train=20000

(flags after `--` go to runners.train; --model_dir, --epochs, --eval_every and
--verbose are set here). The trace is also readable in TensorBoard's profile plugin.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def profile_between_checkpoints(model_dir: str, logdir: str, first: int, last: int, done):
  """Starts the profiler once ckpt-`first` exists, stops it once ckpt-`last` exists."""
  import tensorflow as tf

  def wait_for(number):
    path = os.path.join(model_dir, "ckpt", f"ckpt-{number}.index")
    while not os.path.exists(path) and not done.is_set():
      time.sleep(0.01)

  wait_for(first)
  if done.is_set():
    return
  tf.profiler.experimental.start(logdir)
  started = time.perf_counter()
  wait_for(last)
  tf.profiler.experimental.stop()
  print(f"profiled {time.perf_counter() - started:.2f} s of training", flush=True)


def op_kind(op_type: str) -> str:
  """A coarse kind for an op type of the trace."""
  if "MatMul" in op_type or "Conv" in op_type:
    return "matmul/conv (" + op_type + ")"
  if op_type.startswith("ResourceApply") or op_type.startswith("Apply"):
    return "optimizer update (" + op_type + ")"
  return "other ops (" + op_type + ")"


def summarise(logdir: str, top: int):
  """Sums event durations per (thread, name) in the newest .xplane.pb under logdir."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2

  paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
  if not paths:
    raise SystemExit(f"no .xplane.pb under {logdir}")
  space = xplane_pb2.XSpace()
  with open(paths[-1], "rb") as f:
    space.ParseFromString(f.read())
  by_thread = collections.Counter()
  by_name = collections.Counter()
  wall = 0.0
  for plane in space.planes:
    if not plane.name.startswith("/host:CPU"):
      continue
    names = {k: v.name for k, v in plane.event_metadata.items()}
    for line in plane.lines:
      if not line.events:
        continue
      # Top-level busy time of the thread: merge nested events by keeping the outermost.
      spans = sorted((e.offset_ps, e.offset_ps + e.duration_ps) for e in line.events)
      busy, end = 0, -1
      for s, e in spans:
        if s >= end:
          busy += e - s
          end = e
        elif e > end:
          busy += e - end
          end = e
      thread = line.display_name or line.name
      by_thread[thread] += busy / 1e12
      first = min(s for s, _ in spans)
      wall = max(wall, (max(e for _, e in spans) - first) / 1e12)
      for e in line.events:
        by_name[(thread, names.get(e.metadata_id, "?"))] += e.duration_ps / 1e12
  by_kind = collections.Counter()
  for (thread, name), seconds in by_name.items():
    if thread.startswith("tf_Compute") and ":" in name and "::" not in name:
      by_kind[op_kind(name.rsplit(":", 1)[1])] += seconds
  print(f"\ntrace {paths[-1]}\nwall {wall:.2f} s; busy seconds per thread (nesting merged):")
  for thread, seconds in by_thread.most_common(top):
    print(f"  {seconds:8.3f}  {thread}")
  print("\nop time on the compute threads by kind:")
  total = sum(by_kind.values())
  for kind, seconds in by_kind.most_common(top):
    print(f"  {seconds:8.3f}  {100 * seconds / total:5.1f}%  {kind}")
  print("\nlargest (thread, event) sums (nested events counted inside their parents too):")
  for (thread, name), seconds in by_name.most_common(top * 3):
    print(f"  {seconds:8.3f}  {thread[:28]:<28}  {name[:90]}")


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--logdir", required=True, help="where the profile trace goes")
  p.add_argument("--top", type=int, default=25)
  p.add_argument("--summarise_only", action="store_true", help="only print the summary of --logdir")
  p.add_argument("runner_flags", nargs="*", help="runners.train flags (after --)")
  args = p.parse_args()
  if args.summarise_only:
    summarise(args.logdir, args.top)
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  from absl import flags

  from runners import train as train_runner

  scratch = tempfile.TemporaryDirectory(prefix="profile_train_")
  model_dir = scratch.name
  fv = flags.FLAGS
  train_runner.define_flags(fv)
  fv(
    [sys.argv[0]]
    + args.runner_flags
    + [f"--model_dir={model_dir}", "--epochs=3", "--eval_every=100000", "--verbose=0"]
  )
  done = threading.Event()
  watcher = threading.Thread(
    target=profile_between_checkpoints, args=(model_dir, args.logdir, 1, 2, done), daemon=True
  )
  watcher.start()
  try:
    train_runner.main([sys.argv[0]])
  finally:
    done.set()
    watcher.join()
    scratch.cleanup()
  summarise(args.logdir, args.top)


if __name__ == "__main__":
  main()
