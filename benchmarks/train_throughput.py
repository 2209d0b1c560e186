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

With --bare it also runs benchmarks/bare_step.py (the same networks and objective in
one bare tf.function, with and without XLA) for each model in the same rounds and
prints runners.train / the faster bare step. --family=celeba times the CelebA
networks (configs/celeba_<model>.flags) on a folder in CelebA's layout.

Every run also reports its start-up: seconds from the command to the end of epoch 1
less one steady epoch, i.e. imports, data loading, building and tracing (and the
first checkpoint save).
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
sys.path.insert(0, ROOT)
MODELS = ("jmvae", "jmvae_kl", "hierarchical_jmvae", "cvae", "cmma")
EXTRA_MODELS = {"celeba": ("jmvae_kl_gan",)}  # a family's models beyond the default five
FAMILIES = {  # flagfile pattern, default data directory
  "mnist": ("configs/mnist_{}.flags", os.path.join(ROOT, "..", "shared", "data", "mnist")),
  "celeba": ("configs/celeba_{}.flags", "/work/cmp/faces"),
}


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
  """[(examples_per_second, wall time of the event)] per epoch, as runners.train logged it."""
  import tensorflow as tf  # only the parent reads events; imported late to keep --help fast

  values = {}
  for path in tf.io.gfile.glob(os.path.join(model_dir, "logs", "train", "events.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag == "examples_per_second":
          value = float(tf.make_ndarray(v.tensor)) if v.HasField("tensor") else v.simple_value
          values[event.step] = (value, event.wall_time)
  return [values[k] for k in sorted(values)]


def ours(model, args, variant=""):
  """(steady examples/s, peak MiB, start-up seconds) of one runners.train run, with the
  extra flags of `variant` (space-separated) after --extra_flags."""
  flagfile = FAMILIES[args.family][0].format(model)
  with tempfile.TemporaryDirectory() as model_dir:
    cmd = [
      sys.executable,
      "-m",
      "runners.train",
      f"--flagfile={flagfile}",
      f"--data_dir={args.data_dir}",
      f"--model_dir={model_dir}",
      f"--epochs={args.epochs}",
      f"--batch_size={args.batch_size}",
      "--eval_every=100000",
      "--verbose=0",
      f"--steps_per_execution={args.steps_per_execution}",
      f"--precision={args.precision}",
    ]
    if args.num_train:
      cmd.append(f"--num_train={args.num_train}")
    if args.jit_compile != "auto":
      cmd.append(f"--jit_compile={args.jit_compile}")
    extra = [a for a in f"{args.extra_flags} {variant}".split() if a]
    # --tree=PATH (a variant's): run that checkout's code (e.g. a git worktree of the landed
    # commit) with this venv; `-m` puts the working directory first on sys.path.
    trees = [a.split("=", 1)[1] for a in extra if a.startswith("--tree=")]
    cmd += [a for a in extra if not a.startswith("--tree=")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    launched = time.time()
    _, peak_mb = run_child(cmd, cwd=trees[-1] if trees else ROOT, env=env)
    per_epoch = epoch_throughputs(model_dir)
  rates = [rate for rate, _ in per_epoch]
  steady = statistics.median(rates[1:] or rates)
  # Epoch 1 ended at its event's time; a steady epoch (with its end-of-epoch work) lasts
  # from one epoch's event to the next, so what came before is start-up: imports, data
  # loading, building the model and tracing the step.
  ends = [wall for _, wall in per_epoch]
  steady_epoch = statistics.median(b - a for a, b in zip(ends, ends[1:])) if len(ends) > 1 else 0
  return steady, peak_mb, ends[0] - launched - steady_epoch


def bare(model, args):
  """({jit_compile: examples/s}, {LIMIT field: value}) of benchmarks/bare_step.py for
  `model` (MNIST networks)."""
  cmd = [
    sys.executable,
    os.path.join(ROOT, "benchmarks", "bare_step.py"),
    f"--data_dir={args.data_dir}",
    f"--models={model}",
    f"--batch_size={args.batch_size}",
    f"--jit_compile={args.bare_jit}",
  ] + [a for a in args.bare_flags.split() if a]
  out, _ = run_child(cmd, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  found = re.findall(
    r"RESULT bare_step model=\S+ jit_compile=(\w+) adam=\w+ examples_per_sec=([\d.]+)", out
  )
  if not found:
    raise RuntimeError(f"no RESULT line from bare_step.py:\n{out[-2000:]}")
  limit = re.search(r"LIMIT bare_step model=\S+ (.*)", out)
  fields = dict(kv.split("=") for kv in limit.group(1).split()) if limit else {}
  return {jit: float(rate) for jit, rate in found}, {k: float(v) for k, v in fields.items()}


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
  p.add_argument("--family", default="mnist", choices=sorted(FAMILIES), help="which networks")
  p.add_argument(
    "--data_dir",
    default=None,
    help="MNIST IDX files (mnist) or a folder in CelebA's layout (celeba); default per family",
  )
  p.add_argument("--models", default=",".join(MODELS), help="comma-separated models to time")
  p.add_argument(
    "--rounds", type=int, default=3, help="repeated runs per model (medians are reported)"
  )
  p.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is dropped")
  p.add_argument(
    "--num_train", type=int, default=None, help="training examples per epoch (default: flagfile's)"
  )
  p.add_argument("--batch_size", type=int, default=100)
  p.add_argument(
    "--jit_compile", default="auto", choices=["auto", "true", "false"], help="auto: the runner's"
  )
  p.add_argument("--steps_per_execution", type=int, default=50)
  p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
  p.add_argument("--extra_flags", default="", help="more runners.train flags, space-separated")
  p.add_argument(
    "--variants",
    default="",
    help="';'-separated sets of extra runners.train flags, each run in every round "
    "(interleaved), e.g. ';--intra_op_threads=0;--jit_compile=true' (the first is the "
    "baseline that --bare and --peer_python are compared with); --tree=PATH in a set runs "
    "the runner of another checkout (e.g. a worktree of the landed commit)",
  )
  p.add_argument(
    "--bare", action="store_true", help="also time benchmarks/bare_step.py (MNIST family only)"
  )
  p.add_argument("--bare_jit", default="both", choices=["true", "false", "both"])
  p.add_argument("--bare_flags", default="", help="more bare_step.py flags, space-separated")
  p.add_argument(
    "--peer_python",
    default=None,
    help="python of a venv with multivae, to run the peer interleaved (MNIST JMVAE-kl)",
  )
  p.add_argument("--peer_steps", type=int, default=300)
  p.add_argument(
    "--peer_warmup_steps",
    type=int,
    default=30,
    help="untimed peer steps first; past ~600 steps stock PyTorch slows on some CPUs "
    "(Adam state goes subnormal)",
  )
  args = p.parse_args()
  args.data_dir = args.data_dir or FAMILIES[args.family][1]
  models = [m for m in args.models.split(",") if m]
  for m in models:
    known = MODELS + EXTRA_MODELS.get(args.family, ())
    if m not in known:
      p.error(f"--models: unknown model {m!r}; choose from {known}")
  if not os.path.isdir(args.data_dir):
    p.error(f"--data_dir={args.data_dir} is not a directory")
  if args.family != "mnist" and (args.bare or args.peer_python):
    p.error("--bare and --peer_python time the MNIST networks only (--family=mnist)")
  if args.epochs < 2:
    p.error("--epochs must be at least 2 (the first is dropped)")

  from jmvae_tf.training import hardware

  print(f"CPU: {hardware.describe_cpu().describe()}", flush=True)
  variants = [v.strip() for v in args.variants.split(";")] if args.variants else [""]
  runs = [(m, v) for m in models for v in variants]
  results = {run: [] for run in runs}
  bare_results = {m: [] for m in models}
  limits = {m: [] for m in models}
  peer_results = []
  started = time.time()

  def name(run):
    m, v = run
    return f"{m} {v}".strip()

  for r in range(args.rounds):
    for m in models:
      for v in variants:
        eps, mb, startup = ours(m, args, v)
        results[(m, v)].append((eps, mb, startup))
        print(
          f"round {r + 1}/{args.rounds}  jmvae-tf {name((m, v)):<20} {eps:8.0f} examples/s  "
          f"peak {mb:6.0f} MiB  start-up {startup:5.1f} s",
          flush=True,
        )
      if args.bare:
        rates, limit = bare(m, args)
        bare_results[m].append(rates)
        limits[m].append(limit)
        print(
          f"round {r + 1}/{args.rounds}  bare step {m:<19} "
          + "  ".join(f"jit={j}: {v:8.0f}" for j, v in sorted(rates.items()))
          + " examples/s",
          flush=True,
        )
      if args.peer_python and m == "jmvae_kl":
        eps, mb = peer(args)
        peer_results.append((eps, mb))
        print(
          f"round {r + 1}/{args.rounds}  MultiVae JMVAE(-kl)     {eps:8.0f} examples/s  peak {mb:6.0f} MiB",
          flush=True,
        )

  extra = f", {args.extra_flags}" if args.extra_flags else ""
  print(
    f"\nMedians over {args.rounds} rounds ({args.family}, batch {args.batch_size}, "
    f"{args.precision}{extra}; epoch 1 dropped; {time.time() - started:.0f} s in all):"
  )
  width = max(22, *(len(name(run)) + 9 for run in runs))
  print(f"| {'run':<{width}} | examples/s | peak MiB | start-up s |")
  print(f"|{'-' * (width + 2)}|-----------:|---------:|-----------:|")
  medians = {}
  for run in runs:
    medians[run] = statistics.median(e for e, _, _ in results[run])
    print(
      f"| {'jmvae-tf ' + name(run):<{width}} | {medians[run]:10.0f} | "
      f"{statistics.median(b for _, b, _ in results[run]):8.0f} | "
      f"{statistics.median(t for _, _, t in results[run]):10.1f} |"
    )
  for run in runs:
    print(
      f"RESULT train family={args.family} model={run[0]} variant={run[1].replace(' ', ',') or '-'} "
      f"examples_per_sec={medians[run]:.0f}"
    )
  if peer_results:
    ours_kl = medians[("jmvae_kl", variants[0])]
    peer_kl = statistics.median(e for e, _ in peer_results)
    print(
      f"| {'MultiVae JMVAE (-kl)':<{width}} | {peer_kl:10.0f} | "
      f"{statistics.median(b for _, b in peer_results):8.0f} |            |"
    )
    print(
      f"\njmvae-tf JMVAE-kl / MultiVae JMVAE: {ours_kl / peer_kl:.2f}x (medians, interleaved "
      f"rounds; peer warm-up {args.peer_warmup_steps} steps)"
    )
  if args.bare:
    print()
    for m in models:
      runner = medians[(m, variants[0])]
      bare_medians = {
        j: statistics.median(rates[j] for rates in bare_results[m]) for j in bare_results[m][0]
      }
      best_jit = max(bare_medians, key=bare_medians.get)
      shown = ", ".join(f"jit={j} {v:.0f}" for j, v in sorted(bare_medians.items()))
      print(
        f"{m}: runners.train / bare step (best, jit={best_jit}) = "
        f"{runner / bare_medians[best_jit]:.2f}  (bare step medians: {shown} examples/s)"
      )
      readings = [lim for lim in limits[m] if lim]  # rounds whose bare step printed LIMIT
      if readings:
        # The machine's bound, from numpy's matmul and copy rates measured in each round: the
        # round where it showed the most (a limit takes the machine at its best).
        best = max(readings, key=lambda lim: lim["matmul_then_adam"])
        bound, matmul_only = best["matmul_then_adam"], best["matmul_only"]
        gflops, gbs = best["matmul_gflops"], best["copy_gbs"]
        print(
          f"{m}: this CPU's limit {bound:.0f} examples/s (matmuls at {gflops:.0f} GFLOP/s, "
          f"then Adam's traffic at {gbs:.0f} GB/s; {matmul_only:.0f} for the matmuls alone; "
          f"bare_step.py LIMIT): runners.train at {runner / bound:.0%}, the bare step at "
          f"{bare_medians[best_jit] / bound:.0%}"
        )
        if peer_results and m == "jmvae_kl":
          goal = 2.5 * statistics.median(e for e, _ in peer_results)
          print(f"{m}: 2.5x MultiVae = {goal:.0f} examples/s = {goal / bound:.0%} of that limit")


if __name__ == "__main__":
  main()
