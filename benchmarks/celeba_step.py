r"""The paper's CelebA networks: this project's bare training step beside the same networks in
PyTorch (`../shared/benchmarks/celeba_torch_peer.py`, in the peer venv), interleaved.

Ours: the model `runners.train` builds from configs/celeba_<model>.flags (JMVAE-kl: 19,099,115
parameters), trained by one `tf.function` on an in-memory random batch of 100 (faces uniform in
[-1, 1], attributes +-1): the model's own `train_step` (its `loss_terms`, the legacy Keras Adam
the runner uses), `--steps_per_call` steps per call. No tf.data, no fit, no callbacks: what the
networks cost. The peer: PyTorch's step on the same networks at the same batch.

  python benchmarks/celeba_step.py --peer_python=/work/peer-venv/bin/python --rounds=3
  python benchmarks/celeba_step.py --model=jmvae_kl_gan --peer_python=/work/peer-venv/bin/python

Each round runs every variant in its own process, one after the other (interleaved, so the
machine's drift falls on all of them alike), and the medians are printed with the CPU and the
LIMIT: this CPU's float32 matmul rate (numpy, all cores) against the conv and dense FLOPs of a
step (forward 2 per multiply-add, each gradient 2 more; the first layer of each branch has no
input gradient), i.e. the rate at which a step made only of matrix products would run here.
`--variants` picks which of ours to time (threads "intra/inter", "xla"), e.g.
`--variants=1/2,2/1,2/2,xla` (the runner's default without a GPU is 1/2: half the cores
intra-op).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PEERS = {  # the same networks and objective in PyTorch, by model
  "jmvae_kl": os.path.join(ROOT, "..", "shared", "benchmarks", "celeba_torch_peer.py"),
  "jmvae_kl_gan": os.path.join(ROOT, "benchmarks", "celeba_gan_torch_peer.py"),
}


def build_model(model_name: str):
  """The model of configs/celeba_<model>.flags on CelebA's modalities (no files needed), and
  the flags."""
  import types

  from absl import flags

  from jmvae_tf.core.likelihoods import GAUSSIAN_FIXED
  from jmvae_tf.core.modalities import Modality
  from jmvae_tf.models import config as config_lib
  from pipelines import celeba
  from runners import train as train_runner

  fv = flags.FlagValues()
  train_runner.define_flags(fv)
  flagfile = os.path.join(ROOT, "configs", f"celeba_{model_name}.flags")
  fv([sys.argv[0], f"--flagfile={flagfile}", "--model_dir=unused"])
  data = types.SimpleNamespace(
    modalities=(
      Modality("image", GAUSSIAN_FIXED, (celeba.IMAGE_SIZE, celeba.IMAGE_SIZE, 3), "image"),
      Modality("attributes", GAUSSIAN_FIXED, (celeba.NUM_ATTRIBUTES,), "vector"),
    ),
    architecture=celeba.CelebADataSet.architecture,
    name="celeb_a",
  )
  model = config_lib.build_model(train_runner.model_config_from_flags(data, fv))
  return model, fv


def step_flops(model) -> float:
  """Matrix-product FLOPs of one training example (see the module docstring) over the model's
  Conv2D, Conv2DTranspose and Dense layers (multiply-adds: kernel size x output pixels, or x
  input pixels for a transposed convolution); the first layer of a branch reads data and gets
  no input gradient. The VAE-GAN runs its image decoder twice a step (reconstruction, fake)
  and its discriminator three times (real, reconstruction, fake; only the real image's first
  layer needs no input gradient); counted so, once each, a lower bound on its work (each of
  its three gradients is taken apart)."""
  import tf_keras as keras

  discriminator = getattr(model, "discriminator", None)
  in_discriminator, in_image_decoder = set(), set()
  if discriminator is not None:
    in_discriminator = {id(m) for m in discriminator.submodules}
    in_image_decoder = {id(m) for m in model.decoders[model.image_name].submodules}
  total = 0.0
  for layer in model.submodules:
    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
      continue
    macs = layer.kernel.shape.num_elements()
    if isinstance(layer, keras.layers.Conv2DTranspose):
      macs *= layer.input_shape[1] * layer.input_shape[2]
    elif isinstance(layer, keras.layers.Conv2D):
      macs *= layer.output_shape[1] * layer.output_shape[2]
    if id(layer) in in_discriminator:
      total += macs * ((4 if layer.name == "conv_0" else 6) + 2 * 6)
    elif id(layer) in in_image_decoder:
      total += macs * 2 * 6
    else:
      total += macs * (4 if layer.name in ("conv_0", "dense_0") else 6)
  return total


def ours(args):
  """One process: our bare step with the threads or XLA of `args.variant`; prints one JSON."""
  import tensorflow as tf
  import tf_keras as keras

  xla = args.variant == "xla"
  if not xla:
    intra, inter = (int(t) for t in args.variant.split("/"))
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
  keras.utils.set_random_seed(0)
  model, fv = build_model(args.model)
  model.initialize()
  model.compile(optimizer=keras.optimizers.legacy.Adam(fv.learning_rate))
  model.build_optimizer_state()
  rng = tf.random.Generator.from_seed(1)
  n = args.batch_size
  batch = {
    "image": rng.uniform([n, 64, 64, 3], -1.0, 1.0),
    "attributes": tf.sign(rng.uniform([n, 40], -1.0, 1.0)),
  }

  @tf.function(jit_compile=xla)
  def run_steps():
    for _ in tf.range(args.steps_per_call):
      model.train_step(batch)
    return model.optimizer.iterations.read_value()

  started = time.perf_counter()
  run_steps().numpy()  # trace, compile, first steps
  first = time.perf_counter() - started
  started = time.perf_counter()
  for _ in range(args.calls):
    run_steps()
  run_steps().numpy()
  elapsed = time.perf_counter() - started
  rate = (args.calls + 1) * args.steps_per_call * n / elapsed
  params = sum(v.shape.num_elements() for v in model.trainable_variables)
  print(
    json.dumps({"rate": rate, "first_call_s": first, "params": params, "flops": step_flops(model)})
  )


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--peer_python", default=None, help="python of the venv with torch")
  p.add_argument("--model", default="jmvae_kl")
  p.add_argument("--variants", default="1/2,2/1")
  p.add_argument(
    "--variant_timeout",
    type=float,
    default=600,
    help="seconds before a variant's process is stopped and reported as timed out (XLA's "
    "CelebA step on the AVX-512 Xeon did not finish 8 steps in 400 s)",
  )
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--batch_size", type=int, default=100)
  p.add_argument("--steps_per_call", type=int, default=5)
  p.add_argument("--calls", type=int, default=4)
  p.add_argument("--peer_steps", type=int, default=25)
  p.add_argument("--variant", default=None, help=argparse.SUPPRESS)  # one process's own
  args = p.parse_args()
  if args.peer_python and args.model not in PEERS:
    p.error(f"no PyTorch peer for --model={args.model} (peers: {', '.join(sorted(PEERS))})")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  if args.variant:
    return ours(args)

  from jmvae_tf.training import hardware

  print(f"CPU: {hardware.describe_cpu().describe()}", flush=True)
  variants = [v for v in args.variants.split(",") if v]
  names = [f"ours {v}" for v in variants] + (["PyTorch"] if args.peer_python else [])
  rates = {n: [] for n in names}
  flops = None
  for r in range(args.rounds):
    for v in variants:
      try:
        out = subprocess.run(
          [
            sys.executable,
            __file__,
            f"--variant={v}",
            f"--model={args.model}",
            f"--batch_size={args.batch_size}",
            f"--steps_per_call={args.steps_per_call}",
            f"--calls={args.calls}",
          ],
          capture_output=True,
          text=True,
          check=True,
          cwd=ROOT,
          timeout=args.variant_timeout,
        ).stdout
      except subprocess.TimeoutExpired:
        print(f"round {r + 1} ours {v}: timed out after {args.variant_timeout:.0f} s", flush=True)
        continue
      rec = json.loads(out.strip().splitlines()[-1])
      rates[f"ours {v}"].append(rec["rate"])
      flops = rec["flops"]
      print(
        f"round {r + 1} ours {v}: {rec['rate']:.1f} examples/s "
        f"(first call {rec['first_call_s']:.1f} s; {rec['params']:,} parameters)",
        flush=True,
      )
    if args.peer_python:
      out = subprocess.run(
        [args.peer_python, PEERS[args.model], str(args.peer_steps), str(hardware.usable_cores())],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
      ).stdout
      rate = float(re.search(r"([0-9.]+) examples/s", out).group(1))
      rates["PyTorch"].append(rate)
      print(f"round {r + 1} PyTorch: {rate:.1f} examples/s ({out.splitlines()[0]})", flush=True)
  from benchmarks import bare_step

  gflops, _ = bare_step.machine_rates()
  limit = gflops * 1e9 / flops if flops else float("nan")
  print(
    f"\nLIMIT celeba_step model={args.model} matmul_gflops={gflops:.0f} "
    f"gflop_per_example={(flops or 0) / 1e9:.2f} matmul_only={limit:.1f} examples/s"
  )
  for n in names:
    if not rates[n]:
      print(f"{n}: no round finished")
      continue
    median = statistics.median(rates[n])
    print(
      f"{n}: median {median:.1f} examples/s ({median / limit:.0%} of LIMIT) over "
      f"{len(rates[n])} rounds ({', '.join(f'{x:.1f}' for x in rates[n])})"
    )


if __name__ == "__main__":
  sys.exit(main())
