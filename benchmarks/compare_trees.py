r"""Old against new: one benchmark script run from two checkouts of this project, alternately,
round by round (this machine's speed drifts between runs), with the medians of the figures it
prints on its RESULT lines and new / old for each.

  git worktree add /tmp/old <commit>
  python benchmarks/compare_trees.py --old=/tmp/old --rounds=5 -- \
      benchmarks/train_throughput.py --models=jmvae_kl --rounds=1 --epochs=3
  python benchmarks/compare_trees.py --old=/tmp/old --rounds=5 -- \
      benchmarks/evaluate_speed.py --model=jmvae --num_test=2000

The script path is relative to each checkout; the same arguments go to both. Each RESULT line
("RESULT <what> key=value ... figure=<number>") is one measurement, named by its text without
its numbers; which figure is better (higher or lower) is not assumed: both are printed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMBER = re.compile(r"(\w+)=(-?[\d.]+(?:e-?\d+)?)$")


def results(output: str):
  """{measurement name: {figure: value}} of the RESULT lines of one run."""
  found = {}
  for line in output.splitlines():
    if not line.startswith("RESULT "):
      continue
    words = line.split()[1:]
    figures = {m.group(1): float(m.group(2)) for m in map(NUMBER.match, words) if m}
    name = " ".join(w for w in words if not NUMBER.match(w))
    found[name] = figures
  return found


def run(tree: str, script_args, python: str):
  """One run of the script in `tree`; its RESULT figures."""
  done = subprocess.run(
    [python, os.path.join(tree, script_args[0]), *script_args[1:]],
    cwd=tree,
    env=dict(os.environ, PYTHONPATH=tree, TF_CPP_MIN_LOG_LEVEL="3"),
    capture_output=True,
    text=True,
  )
  if done.returncode:
    raise RuntimeError(
      f"{script_args[0]} in {tree} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    )
  found = results(done.stdout)
  if not found:
    raise RuntimeError(f"no RESULT line from {script_args[0]} in {tree}:\n{done.stdout[-2000:]}")
  return found, done.stdout


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--old", required=True, help="the other checkout (e.g. a git worktree)")
  p.add_argument("--new", default=ROOT, help="this checkout (default)")
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--python", default=sys.executable)
  p.add_argument("script", nargs=argparse.REMAINDER, help="-- SCRIPT ARGS...")
  args = p.parse_args()
  script = [a for a in args.script if a != "--"]
  if not script:
    p.error("give the benchmark script and its arguments after --")
  sys.path.insert(0, ROOT)
  from jmvae_tf.training import hardware  # pylint: disable=g-import-not-at-top

  print(f"CPU: {hardware.describe_cpu().describe()}", flush=True)
  trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
  for name, tree in trees.items():
    commit = subprocess.run(
      ["git", "-C", tree, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    print(f"{name}: {tree} ({commit.stdout.strip() or 'not a git checkout'})")
  print(f"script: {' '.join(script)}; {args.rounds} rounds, old then new in each", flush=True)
  seen = {name: [] for name in trees}
  started = time.time()
  for r in range(args.rounds):
    for name, tree in trees.items():
      found, _ = run(tree, script, args.python)
      seen[name].append(found)
      shown = "; ".join(
        f"{m}: " + ", ".join(f"{k}={v:g}" for k, v in figures.items())
        for m, figures in found.items()
      )
      print(f"round {r + 1}/{args.rounds} {name}: {shown}", flush=True)
  print(f"\nMedians over {args.rounds} interleaved rounds ({time.time() - started:.0f} s in all):")
  print("| measurement | figure | old | new | new / old |")
  print("|---|---|---:|---:|---:|")
  for measurement in seen["new"][0]:
    for figure in seen["new"][0][measurement]:
      medians = {
        name: statistics.median(run[measurement][figure] for run in runs)
        for name, runs in seen.items()
      }
      ratio = medians["new"] / medians["old"] if medians["old"] else float("nan")
      print(f"| {measurement} | {figure} | {medians['old']:g} | {medians['new']:g} | {ratio:.3f} |")


if __name__ == "__main__":
  main()
