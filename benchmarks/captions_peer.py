r"""Captions beside MultiVae (issue 28): our JMVAE-kl on MNIST images and captions of their class
(`--data_options=captions=instead`) and MultiVae's JMVAE with its categorical text decoder, at an
equal budget, on the very same training batches; both scored on the same test pairs by the
same classifier and caption parser, with training time and peak memory.

  python benchmarks/captions_peer.py --peer_python=/work/peer-venv/bin/python \
      --data_dir=../shared/data/mnist --epochs=10 --work_dir=/tmp/captions_peer

1. The training batches: this project's pipeline (`data.train_dataset(100, data_seed)`, what
   `runners.train` reads) drained for `--epochs` epochs of 500 steps and written to
   WORK/train.npz: each step's binarised images (packed bits) and captions (token columns, -1
   for padding), in order, so the peer sees the same images, bits, captions and batch order.
   The test pairs (image bits and captions as evaluation reads them) go to WORK/test.npz.
2. Ours: `runners.train --flagfile=configs/mnist_captions_jmvae_kl.flags` then `runners.evaluate`
   (eq 11 with N = 10, coherence), in subprocesses.
3. The peer: benchmarks/multivae_captions_peer.py in the peer venv (torch, multivae), which
   trains on WORK/train.npz and writes what it generates as .npz; read here by the same
   classifier (images) and the grammar's parser (captions: most probable word per position up
   to <eos>), as `runners.evaluate` reads ours.
4. Speed, interleaved (`--speed_rounds`, default 3): round by round, ours (`runners.train`, 2
   epochs of 20,000: the second epoch's examples/s) then the peer (steps 20-220 of the same
   batches) under each OMP_WAIT_POLICY of `--speed_omp_wait_policies` (default: stock, then
   PASSIVE), medians. `--speed_only` runs these rounds alone.

The peer runs at 2 threads (`--peer_threads`). Stock PyTorch's OpenMP threads spin at each
barrier; on a machine shared with other jobs a 2-thread step then waits for a descheduled
thread at every op and runs 10-30x slower. `--peer_omp_wait_policy=PASSIVE` (threads sleep
instead) avoids that, at the cost of some speed on an idle machine.

Peak memory: each command's maximum RSS as `/usr/bin/time` reports it (os.wait4 from this
process would not do: Linux carries a parent's peak RSS across fork and exec into the child's,
and this process holds TensorFlow and the data). Prints the CPU, the load (`uptime`) at each
stage, both sides' figures side by side, and writes WORK/side_by_side.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
FLAGFILE = "configs/mnist_captions_jmvae_kl.flags"
PEER = "benchmarks/multivae_captions_peer.py"


def load():
  out = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
  return out[out.find("load average") + len("load average: ") :] if "load average" in out else out


def run(cmd, env=None):
  """(output, peak RSS MiB, wall seconds) of `cmd`, run under /usr/bin/time."""
  with tempfile.NamedTemporaryFile("r", suffix=".time") as peak_file:
    started = time.perf_counter()
    proc = subprocess.run(
      ["/usr/bin/time", "-f", "%M", "-o", peak_file.name, *cmd],
      cwd=ROOT,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    seconds = time.perf_counter() - started
    if proc.returncode:
      raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    peak_kib = int(peak_file.read().split()[-1])
  return proc.stdout, peak_kib / 1024.0, seconds


def epoch_rates(model_dir):
  """examples/s of each epoch, as runners.train logged them for TensorBoard."""
  import tensorflow as tf

  values = {}
  for path in tf.io.gfile.glob(os.path.join(model_dir, "logs", "train", "events.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag == "examples_per_second":
          values[event.step] = float(tf.make_ndarray(v.tensor))
  return [values[k] for k in sorted(values)]


def export(data, epochs, batch_size, data_seed, work_dir):
  """WORK/train.npz (the training batches, in order) and WORK/test.npz (the test pairs)."""
  import numpy as np

  from pipelines.captioning import CAPTION

  def columns(onehot):  # [B, T, V] -> [B, T] int8, -1 for an all-zero (padding) row
    return np.where(onehot.sum(-1) > 0, onehot.argmax(-1), -1).astype(np.int8)

  def packed(images):  # [B, 28, 28, 1] {0, 1} -> [B, 98] uint8
    return np.packbits(images.reshape(len(images), -1).astype(np.uint8), axis=-1)

  steps = data.steps_per_epoch(batch_size)
  images, captions = [], []
  stream = iter(data.train_dataset(batch_size, data_seed))
  for _ in range(epochs * steps):
    batch = next(stream)
    images.append(packed(batch["image"].numpy()))
    captions.append(columns(batch[CAPTION].numpy()))
  shape = (epochs, steps * batch_size)
  train_npz = os.path.join(work_dir, "train.npz")
  np.savez(
    train_npz,
    images=np.concatenate(images).reshape(shape + (-1,)),
    captions=np.concatenate(captions).reshape(shape + (-1,)),
    vocabulary_size=np.int64(data.modalities[1].text.size),
  )
  n = data.num_examples("test")
  test = next(iter(data.eval_dataset("test", n, seed=data_seed)))
  test_npz = os.path.join(work_dir, "test.npz")
  np.savez(test_npz, image=packed(test["image"].numpy()), caption=columns(test[CAPTION].numpy()))
  return train_npz, test_npz


def read_flagfile():
  flags = {}
  with open(os.path.join(ROOT, FLAGFILE)) as f:
    for line in f:
      if line.startswith("--") and "=" in line:
        key, value = line.strip()[2:].split("=", 1)
        flags[key] = value
  return flags


def rates_text(rates):
  return ", ".join(f"{v:.0f}" for v in rates)


def speed_rounds(args, peer_cmd, env, loads):
  """{name: [examples/s per round]}: round by round, ours (runners.train, 2 epochs of 20,000:
  the second epoch's rate) then the peer (steps 20-220 of the exported batches) under each
  OMP_WAIT_POLICY asked."""
  speed = {"ours": []}
  policies = [p for p in args.speed_omp_wait_policies.split(",") if p]
  for policy in policies:
    speed[f"MultiVae, OMP_WAIT_POLICY {policy}"] = []
  for r in range(args.speed_rounds):
    with tempfile.TemporaryDirectory() as model_dir:
      cmd = [
        sys.executable,
        "-m",
        "runners.train",
        f"--flagfile={FLAGFILE}",
        f"--data_dir={args.data_dir}",
        f"--model_dir={model_dir}",
        "--epochs=2",
        "--num_train=20000",
        "--eval_every=100000",
        "--verbose=0",
      ]
      run(cmd, env)
      speed["ours"].append(epoch_rates(model_dir)[-1])
    for policy in policies:
      peer_env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
      if policy != "stock":
        peer_env["OMP_WAIT_POLICY"] = policy
      out, _, _ = run(peer_cmd + ["--speed_steps=200", "--speed_warmup=20"], peer_env)
      found = re.search(r"RESULT multivae_captions examples_per_sec=([\d.]+)", out)
      speed[f"MultiVae, OMP_WAIT_POLICY {policy}"].append(float(found.group(1)))
    loads[f"speed round {r + 1}"] = load()
    print(
      f"speed round {r + 1}: "
      + ", ".join(f"{name} {rates[-1]:.0f}" for name, rates in speed.items())
      + f" examples/s; load {loads[f'speed round {r + 1}']}",
      flush=True,
    )
  return speed


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--peer_python", required=True, help="python of the venv with torch and multivae")
  p.add_argument("--data_dir", default=os.path.join(ROOT, "..", "shared", "data", "mnist"))
  p.add_argument("--epochs", type=int, default=10)
  p.add_argument("--work_dir", required=True, help="where both runs and their outputs go")
  p.add_argument("--model_dir", default=None, help="an already trained run of ours to score")
  p.add_argument("--text_decoder", choices=("mlp", "cub"), default="mlp", help="the peer's")
  p.add_argument("--peer_flush_denormal", action="store_true", help="FTZ/DAZ for the peer")
  p.add_argument("--peer_threads", type=int, default=2)
  p.add_argument(
    "--peer_omp_wait_policy",
    default="",
    help="OMP_WAIT_POLICY for the peer (PASSIVE: its threads sleep rather than spin at a "
    "barrier; on a machine shared with other jobs stock 2-thread PyTorch can run 10-30x slower "
    "spinning). Empty: the environment's (stock)",
  )
  p.add_argument("--speed_rounds", type=int, default=3, help="interleaved speed rounds (0: none)")
  p.add_argument(
    "--speed_omp_wait_policies",
    default="stock,PASSIVE",
    help="the peer in each speed round under each of these OMP_WAIT_POLICY values (stock: "
    "the environment's)",
  )
  p.add_argument(
    "--speed_only", action="store_true", help="only the interleaved speed rounds (1 epoch exported)"
  )
  args = p.parse_args()
  os.makedirs(args.work_dir, exist_ok=True)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  peer_env = dict(os.environ)
  if args.peer_omp_wait_policy:
    peer_env["OMP_WAIT_POLICY"] = args.peer_omp_wait_policy
  loads = {"start": load()}

  import numpy as np

  from jmvae_tf.evaluation import coherence
  from jmvae_tf.training import hardware
  from pipelines import registry

  flags = read_flagfile()
  batch_size, warmup = int(flags["batch_size"]), int(flags["warmup_epochs"])
  cpu = hardware.describe_cpu().describe()
  print(f"CPU: {cpu}\nload at the start: {loads['start']}", flush=True)
  data = registry.make_dataset(
    "mnist", args.data_dir, num_train=int(flags["num_train"]), options=[flags["data_options"]]
  )
  started = time.perf_counter()
  exported = 1 if args.speed_only else args.epochs
  train_npz, test_npz = export(data, exported, batch_size, 0, args.work_dir)
  print(f"exported the batches in {time.perf_counter() - started:.0f} s", flush=True)
  peer_out = os.path.join(args.work_dir, "multivae.npz")
  common = [
    args.peer_python,
    PEER,
    f"--train_npz={train_npz}",
    f"--test_npz={test_npz}",
    f"--output={peer_out}",
    f"--batch_size={batch_size}",
    f"--latent_dim={flags['latent_dim']}",
    f"--alpha={flags['alpha']}",
    f"--warmup={warmup}",
    f"--lr={flags['learning_rate']}",
    f"--text_decoder={args.text_decoder}",
    f"--threads={args.peer_threads}",
  ] + (["--flush_denormal"] if args.peer_flush_denormal else [])
  if args.speed_only:
    speed = speed_rounds(args, common, env, loads)
    print(f"\nCPU: {cpu}")
    print("load (uptime: 1, 5, 15 min): " + "; ".join(f"{k} {v}" for k, v in loads.items()))
    for name, rates in speed.items():
      print(f"{name}: median {statistics.median(rates):.0f} examples/s ({rates_text(rates)})")
    return

  # --- ours: train, evaluate
  ours_dir = args.model_dir or os.path.join(args.work_dir, "ours")
  ours_train = None
  if not args.model_dir:
    cmd = [
      sys.executable,
      "-m",
      "runners.train",
      f"--flagfile={FLAGFILE}",
      f"--data_dir={args.data_dir}",
      f"--model_dir={ours_dir}",
      f"--epochs={args.epochs}",
      "--eval_every=100000",  # no held-out pass inside training (the peer has none)
      "--verbose=0",
    ]
    _, peak, seconds = run(cmd, env)
    ours_train = {"seconds": seconds, "epoch_rates": epoch_rates(ours_dir), "peak_rss_mb": peak}
    loads["ours trained"] = load()
    print(f"ours: trained in {seconds:.0f} s, peak {peak:.0f} MiB; load {load()}", flush=True)
  cmd = [
    sys.executable,
    "-m",
    "runners.evaluate",
    f"--model_dir={ours_dir}",
    f"--data_dir={args.data_dir}",
    "--noprogress",
  ]
  _, eval_peak, eval_seconds = run(cmd, env)
  with open(os.path.join(ours_dir, "evaluation.json")) as f:
    ours = json.load(f)
  loads["ours evaluated"] = load()

  # --- the peer: train and generate
  peer_log, peer_peak, peer_seconds = run(common + [f"--epochs={args.epochs}"], peer_env)
  print(peer_log, flush=True)
  generated = dict(np.load(peer_out))
  with open(os.path.splitext(peer_out)[0] + ".json") as f:
    peer = json.load(f)
  loads["peer done"] = load()

  speed = speed_rounds(args, common, env, loads)
  loads["end"] = load()

  # --- score the peer as runners.evaluate scores ours
  readers_by_name = coherence.data_readers(data)
  readers = {m.name: coherence.make_reader(m, readers_by_name) for m in data.modalities}
  shapes = {m.name: tuple(m.shape) for m in data.modalities}
  truth = data.labels("test", data.num_examples("test"))

  def read(name, values):
    return np.asarray(readers[name](values.reshape((-1,) + shapes[name])))

  peer_coherence = {
    key: float(coherence.accuracy(read(key.split("|")[0], value), truth).mean())
    for key, value in generated.items()
    if not key.startswith("prior/")
  }
  prior = [read(m.name, generated[f"prior/{m.name}"]) for m in data.modalities]
  peer_prior = float(np.mean(prior[0] == prior[1]))

  def steady(rates):
    return statistics.median(rates[1:] or rates)

  peer_rates = [peer["examples_per_epoch"] / s for s in peer["epoch_seconds"]]
  directions = ("image|caption", "caption|image", "image|caption,image", "caption|caption,image")
  rows = [
    (f"coherence, {k}", f"{ours['coherence']['pairs'][k]:.4f}", f"{peer_coherence[k]:.4f}")
    for k in directions[:2]
  ]
  rows.append(
    (
      "coherence, both from z ~ p(z) (1,000 draws)",
      f"{ours['coherence']['prior']:.4f}",
      f"{peer_prior:.4f}",
    )
  )
  rows += [
    (f"log p({k}), eq 11, N = 10", f"{ours['values'][k]:.2f}", f"{peer['values'][k]:.2f}")
    for k in directions
  ]
  rows += [
    (
      f"log p({k}) per token (words and <eos>)",
      f"{ours['per_token'][k]:.4f}",
      f"{peer['per_token'][k]:.4f}",
    )
    for k in directions
    if k.startswith("caption")
  ]
  rows += [
    (f"log p({k}), MultiVae's compute_cond_nll, k = 10 (not eq 11)", "", f"{v:.2f}")
    for k, v in peer["compute_cond_nll"].items()
  ]
  if ours_train:
    ours_loop = sum(peer["examples_per_epoch"] / r for r in ours_train["epoch_rates"])
    rows += [
      (
        f"training, {args.epochs} epochs of 50,000: the command, s",
        f"{ours_train['seconds']:.0f}",
        f"{peer_seconds:.0f} (training, then scoring: {peer['eval_seconds']:.0f})",
      ),
      ("  the training loop, s", f"{ours_loop:.0f}", f"{peer['train_seconds']:.0f}"),
      (
        "  examples/s, median of epochs 2-last",
        f"{steady(ours_train['epoch_rates']):.0f}",
        f"{steady(peer_rates):.0f}",
      ),
      (
        "peak RSS of the training command, MiB",
        f"{ours_train['peak_rss_mb']:.0f}",
        f"{peer_peak:.0f} ({peer['train_peak_rss_mb']:.0f} at the end of training)",
      ),
    ]
  rows.append(
    ("peak RSS of the evaluation command, MiB", f"{eval_peak:.0f} ({eval_seconds:.0f} s)", "")
  )
  for name, rates in speed.items():
    rows.append(
      (
        f"examples/s, interleaved rounds, median: {name}",
        f"{statistics.median(rates):.0f} ({rates_text(rates)})" if name == "ours" else "",
        "" if name == "ours" else f"{statistics.median(rates):.0f} ({rates_text(rates)})",
      )
    )
  for k in directions[:2]:
    rows.append((f"z for {k}", ours["coherence"]["inference"][k], peer["inference"][k]))

  print(f"\nCPU: {cpu}")
  print("load (uptime: 1, 5, 15 min): " + "; ".join(f"{k} {v}" for k, v in loads.items()))
  print(
    f"torch {peer['torch']}, multivae {peer['multivae']}, {peer['threads']} threads, "
    f"OMP_WAIT_POLICY={args.peer_omp_wait_policy or 'unset'}, "
    f"flush_denormal={peer['flush_denormal']}, text decoder {peer['text_decoder']}; "
    f"{peer['parameters']:,} parameters"
  )
  print("read by: " + "; ".join(f"{k}: {v}" for k, v in ours["coherence"]["read_by"].items()))
  print("\n| | ours (jmvae-tf) | MultiVae's JMVAE |")
  print("|---|---:|---:|")
  for row in rows:
    print("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
  with open(os.path.join(args.work_dir, "side_by_side.json"), "w") as f:
    json.dump(
      {
        "cpu": cpu,
        "load": loads,
        "ours": ours,
        "ours_train": ours_train,
        "ours_eval": {"peak_rss_mb": eval_peak, "seconds": eval_seconds},
        "multivae": {
          **peer,
          "coherence": peer_coherence,
          "prior": peer_prior,
          "command_seconds": peer_seconds,
          "command_peak_rss_mb": peer_peak,
          "omp_wait_policy": args.peer_omp_wait_policy,
        },
        "speed": speed,
      },
      f,
      indent=2,
    )


if __name__ == "__main__":
  main()
