#!/usr/bin/env python3
"""PyTorch peer benchmark: MultiVae's JMVAE (JMVAE-kl) training throughput on MNIST.

Runs ONLY in the separate peer venv (/work/peer-venv: torch 2.13.0+cpu, multivae 1.0.3).
It does not import this project or TensorFlow.

    /work/peer-venv/bin/python benchmarks/multivae_peer.py --repeats 3

Model: MultiVae's own `JMVAE` class with custom architectures (the paper's MNIST MLPs):
  * joint encoder q(z|x,w): x branch D512R-D512R (784 px), w branch D512R-D512R (one-hot 10),
    concatenated (1024) -> Dense(latent) mean, Dense(latent) log-variance
    (MultiVae's convention: `log_covariance`; `--variance_head softplus` instead computes
    log(softplus(h) + eps), i.e. a softplus variance as in the paper);
  * unimodal encoders q(z|x), q(z|w): D512R-D512R -> Dense(latent) heads;
  * decoders p(x|z): D512R-D512R-D784, Bernoulli(logits); p(w|z): D512R-D512R-D10, categorical.

Training step, timed in a plain loop: binarise the batch (torch.bernoulli),
out = model(batch); out.loss.backward(); Adam(lr) step.  Warm-up steps are not timed;
each timed window is `--steps` steps.  The last line printed is machine-readable:

    RESULT multivae_jmvae examples_per_sec=<median over windows> peak_rss_mb=<float>

Caveat (CPU): stock PyTorch does not flush denormals. After roughly 600 training steps, Adam's
first-moment state for first-layer weights of rarely-lit pixels decays into the subnormal range
(~1.08M of 3.13M entries after 630 steps), and later windows run noticeably slower. With the
defaults, window 3 (steps 630-930) is the one affected. --flush_denormal turns on FTZ/DAZ.
"""

import argparse
import gzip
import os
import resource
import statistics
import sys
import time
import types
from importlib import metadata

import numpy as np

# The torchvision wheel that pip pairs with torch==2.13.0 is the CUDA build; its compiled ops
# cannot load against the CPU-only torch, and torchvision/_meta_registrations.py then raises
# "operator torchvision::nms does not exist" at import.  multivae imports torchvision at
# module level (datasets, trainer utilities) but JMVAE training never uses it, so skip the
# fake-kernel registrations for the missing compiled ops.
sys.modules.setdefault(
  "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from multivae.data.datasets.base import MultimodalBaseDataset  # noqa: E402
from multivae.models import JMVAE, JMVAEConfig  # noqa: E402
from multivae.models.nn.base_architectures import (  # noqa: E402
  BaseDecoder,
  BaseEncoder,
  BaseJointEncoder,
)
from pythae.models.base.base_utils import ModelOutput  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data", "mnist"))
HIDDEN = 512
X_DIM = 784
W_DIM = 10
VAR_EPS = 1e-6


# ----------------------------------------------------------------------------- data


def read_idx(path):
  """Parse an IDX(.gz) file (big-endian header: magic, dims) into a numpy array."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    raw = f.read()
  magic = int.from_bytes(raw[0:4], "big")
  dtype_code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
  if dtype_code != 0x08:
    raise ValueError(f"{path}: only unsigned-byte IDX supported (got type 0x{dtype_code:02x})")
  dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
  offset = 4 + 4 * ndim
  return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def find_file(data_dir, stem):
  for name in (stem + ".gz", stem):
    p = os.path.join(data_dir, name)
    if os.path.exists(p):
      return p
  raise FileNotFoundError(f"{stem}(.gz) not found in {data_dir}")


def load_mnist_train(data_dir, n):
  images = read_idx(find_file(data_dir, "train-images-idx3-ubyte"))[:n]
  labels = read_idx(find_file(data_dir, "train-labels-idx1-ubyte"))[:n]
  x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
  w = F.one_hot(torch.from_numpy(labels.astype(np.int64)), W_DIM).float()
  return x, w


# ----------------------------------------------------------------------------- networks


def mlp(in_dim, hidden=HIDDEN, layers=2):
  mods, d = [], in_dim
  for _ in range(layers):
    mods += [nn.Linear(d, hidden), nn.ReLU()]
    d = hidden
  return nn.Sequential(*mods)


class GaussianHeads(nn.Module):
  """Dense(latent) mean + Dense(latent) variance head -> (mean, log-variance)."""

  def __init__(self, in_dim, latent_dim, variance_head):
    super().__init__()
    self.mean = nn.Linear(in_dim, latent_dim)
    self.var = nn.Linear(in_dim, latent_dim)
    self.variance_head = variance_head

  def forward(self, h):
    v = self.var(h)
    if self.variance_head == "softplus":
      v = torch.log(F.softplus(v) + VAR_EPS)
    return self.mean(h), v


class MLPEncoder(BaseEncoder):
  """Unimodal q(z|m): D512R-D512R -> heads."""

  def __init__(self, in_dim, latent_dim, variance_head):
    BaseEncoder.__init__(self)
    self.latent_dim = latent_dim
    self.body = mlp(in_dim)
    self.heads = GaussianHeads(HIDDEN, latent_dim, variance_head)

  def forward(self, x):
    mu, log_var = self.heads(self.body(x))
    return ModelOutput(embedding=mu, log_covariance=log_var)


class MNISTJointEncoder(BaseJointEncoder):
  """q(z|x,w): per-modality D512R-D512R branches, concat (1024) -> heads."""

  def __init__(self, in_dims, latent_dim, variance_head):
    BaseJointEncoder.__init__(self)
    self.latent_dim = latent_dim
    self.branches = nn.ModuleDict({m: mlp(d) for m, d in in_dims.items()})
    self.heads = GaussianHeads(HIDDEN * len(in_dims), latent_dim, variance_head)

  def forward(self, x: dict):
    h = torch.cat([self.branches[m](x[m]) for m in self.branches], dim=1)
    mu, log_var = self.heads(h)
    return ModelOutput(embedding=mu, log_covariance=log_var)


class MLPDecoder(BaseDecoder):
  """p(m|z): D512R-D512R-D{out} (logits)."""

  def __init__(self, latent_dim, out_dim):
    BaseDecoder.__init__(self)
    self.net = nn.Sequential(mlp(latent_dim), nn.Linear(HIDDEN, out_dim))

  def forward(self, z):
    return ModelOutput(reconstruction=self.net(z))


def build_model(latent_dim, alpha, variance_head):
  in_dims = {"img": X_DIM, "label": W_DIM}
  config = JMVAEConfig(
    n_modalities=2,
    latent_dim=latent_dim,
    input_dims={"img": (X_DIM,), "label": (W_DIM,)},
    decoders_dist={"img": "bernoulli", "label": "categorical"},
    alpha=alpha,
    warmup=0,  # no KL annealing: full JMVAE-kl objective from step 0
    beta=1.0,
    uses_likelihood_rescaling=False,
  )
  encoders = {m: MLPEncoder(d, latent_dim, variance_head) for m, d in in_dims.items()}
  decoders = {m: MLPDecoder(latent_dim, d) for m, d in in_dims.items()}
  joint = MNISTJointEncoder(in_dims, latent_dim, variance_head)
  return JMVAE(config, encoders=encoders, decoders=decoders, joint_encoder=joint)


def count(module):
  return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- benchmark


def peak_rss_mb():
  # ru_maxrss is KiB on Linux.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument(
    "--data_dir",
    default=DEFAULT_DATA_DIR,
    help="directory with MNIST IDX files (default: %(default)s)",
  )
  ap.add_argument("--num_train", type=int, default=50000)
  ap.add_argument("--batch_size", type=int, default=100)
  ap.add_argument("--latent_dim", type=int, default=64)
  ap.add_argument("--alpha", type=float, default=0.01, help="JMVAE-kl alpha")
  ap.add_argument("--lr", type=float, default=1e-3)
  ap.add_argument(
    "--variance_head",
    choices=["logvar", "softplus"],
    default="logvar",
    help="logvar: MultiVae's convention; softplus: paper's softplus variance",
  )
  ap.add_argument("--steps", type=int, default=300, help="timed steps per window")
  ap.add_argument("--warmup_steps", type=int, default=30, help="untimed steps before timing")
  ap.add_argument("--repeats", type=int, default=1, help="number of timed windows")
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument(
    "--flush_denormal",
    action="store_true",
    help="torch.set_flush_denormal(True) (FTZ/DAZ). Off by default = stock PyTorch. "
    "Without it, after ~600 Adam steps ~1M Adam-state entries (first-layer "
    "weights of rarely-lit border pixels decaying by beta1**t) become "
    "subnormal and CPU steps slow down markedly.",
  )
  args = ap.parse_args()

  torch.set_num_threads(args.threads)
  if args.flush_denormal and not torch.set_flush_denormal(True):
    print("warning: --flush_denormal unsupported on this CPU", flush=True)
  torch.manual_seed(args.seed)

  x_all, w_all = load_mnist_train(args.data_dir, args.num_train)
  n = x_all.shape[0]
  n_batches = n // args.batch_size

  model = build_model(args.latent_dim, args.alpha, args.variance_head)
  model.train()
  opt = torch.optim.Adam(model.parameters(), lr=args.lr)

  print(
    f"torch {torch.__version__}  multivae {metadata.version('multivae')}  "
    f"threads={torch.get_num_threads()}  device=cpu  "
    f"flush_denormal={args.flush_denormal}",
    flush=True,
  )
  print(
    f"data: {n} training images from {args.data_dir}; batch_size={args.batch_size} "
    f"({n_batches} batches/epoch)",
    flush=True,
  )
  print(
    f"params: total={count(model)}  joint_encoder={count(model.joint_encoder)}  "
    + "  ".join(f"enc_{m}={count(e)}" for m, e in model.encoders.items())
    + "  "
    + "  ".join(f"dec_{m}={count(d)}" for m, d in model.decoders.items()),
    flush=True,
  )

  state = {"perm": torch.randperm(n), "i": 0}

  def next_batch():
    if state["i"] >= n_batches:
      state["perm"], state["i"] = torch.randperm(n), 0
    idx = state["perm"][state["i"] * args.batch_size : (state["i"] + 1) * args.batch_size]
    state["i"] += 1
    x = torch.bernoulli(x_all[idx])  # dynamic binarisation, per batch
    return MultimodalBaseDataset(data={"img": x, "label": w_all[idx]})

  def train_step():
    batch = next_batch()
    opt.zero_grad(set_to_none=True)
    out = model(batch)
    out.loss.backward()
    opt.step()
    return out.loss

  for _ in range(args.warmup_steps):
    loss = train_step()
  if args.warmup_steps:
    print(f"warm-up: {args.warmup_steps} steps, loss={loss.item():.3f}", flush=True)

  rates = []
  for r in range(args.repeats):
    t0 = time.perf_counter()
    for _ in range(args.steps):
      loss = train_step()
    dt = time.perf_counter() - t0
    rate = args.steps * args.batch_size / dt
    rates.append(rate)
    print(
      f"window {r + 1}/{args.repeats}: {args.steps} steps in {dt:.3f}s  "
      f"examples_per_sec={rate:.1f}  loss={loss.item():.3f}",
      flush=True,
    )

  med = statistics.median(rates)
  if args.repeats > 1:
    print(
      "windows examples_per_sec: " + " ".join(f"{r:.1f}" for r in rates) + f"  median={med:.1f}",
      flush=True,
    )
  print(
    f"RESULT multivae_jmvae examples_per_sec={med:.1f} peak_rss_mb={peak_rss_mb():.1f}", flush=True
  )


if __name__ == "__main__":
  main()
