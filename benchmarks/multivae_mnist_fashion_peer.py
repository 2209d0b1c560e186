#!/usr/bin/env python3
"""The PyTorch peer on three modalities: MultiVae's JMVAE on a MNIST digit, a Fashion-MNIST item
of its class and the label, the paper's MNIST networks for each, trained and then asked to
generate each modality from each set of the others on a test set it is given.

Runs ONLY in the peer venv (torch 2.13.0+cpu, multivae 1.0.3); it imports neither this project
nor TensorFlow. benchmarks/mnist_fashion_peer.py runs it and scores what it writes with this
project's classifiers:

    /work/peer-venv/bin/python benchmarks/multivae_mnist_fashion_peer.py \\
        --mnist_dir=../shared/data/mnist --fashion_dir=/usr/share/datasets/fashion-mnist \\
        --test_npz=TEST.npz --output=OUT.npz --epochs=10

What MultiVae's JMVAE is (multivae/models/jmvae/jmvae_model.py): a joint encoder q(z|all) and
one encoder per modality, trained with the ELBO of the joint encoder plus alpha times the KL
from it to each unimodal encoder (no encoder for a pair); z given one modality is read off its
encoder, given a set of them off the product of their encoders' Gaussians
(`_sample_from_poe_subset_exact`); its warm-up scales the KL and the alpha terms together.

Training pairs each MNIST digit with a Fashion item of its class drawn anew every epoch (as
pipelines/mnist_fashion.py does, with numpy's generator instead of TensorFlow's), both
binarised afresh every epoch.
"""

import argparse
import json
import os
import resource
import sys
import time
from itertools import combinations

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# multivae_peer stubs torchvision's registrations: it comes before multivae.
# isort: off
from multivae_peer import (  # noqa: E402  (stubs torchvision's registrations, then imports torch)
  MLPDecoder,
  MLPEncoder,
  MNISTJointEncoder,
  find_file,
  read_idx,
)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from multivae.data.datasets.base import MultimodalBaseDataset  # noqa: E402
from multivae.models import JMVAE, JMVAEConfig  # noqa: E402
# isort: on

MODALITIES = ("digit", "fashion", "label")
DIMS = {"digit": 784, "fashion": 784, "label": 10}
DISTS = {"digit": "bernoulli", "fashion": "bernoulli", "label": "categorical"}


def load(directory, part):
  images = read_idx(find_file(directory, f"{part}-images-idx3-ubyte")).reshape(-1, 784)
  labels = read_idx(find_file(directory, f"{part}-labels-idx1-ubyte")).astype(np.int64)
  return images.astype(np.float32) / 255.0, labels


def build(latent_dim, alpha, warmup):
  config = JMVAEConfig(
    n_modalities=3,
    latent_dim=latent_dim,
    input_dims={m: (d,) for m, d in DIMS.items()},
    decoders_dist=DISTS,
    alpha=alpha,
    warmup=warmup,
    beta=1.0,
    uses_likelihood_rescaling=False,
  )
  encoders = {m: MLPEncoder(d, latent_dim, "softplus") for m, d in DIMS.items()}
  decoders = {m: MLPDecoder(latent_dim, d) for m, d in DIMS.items()}
  joint = MNISTJointEncoder(DIMS, latent_dim, "softplus")
  return JMVAE(config, encoders=encoders, decoders=decoders, joint_encoder=joint)


def log_likelihood(target, logits, values):
  """log p(target|z) per example for decoder outputs `logits` (rows: draws x examples)."""
  if DISTS[target] == "bernoulli":
    return -F.binary_cross_entropy_with_logits(logits, values, reduction="none").sum(-1)
  return (F.log_softmax(logits, -1) * values).sum(-1)


def mean_of(target, logits):
  return torch.sigmoid(logits) if DISTS[target] == "bernoulli" else F.softmax(logits, -1)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--mnist_dir", required=True)
  ap.add_argument("--fashion_dir", required=True)
  ap.add_argument("--test_npz", required=True, help="the test set: digit, fashion, label arrays")
  ap.add_argument("--output", required=True, help="the .npz written (a .json beside it)")
  ap.add_argument("--num_train", type=int, default=50000)
  ap.add_argument("--epochs", type=int, default=10)
  ap.add_argument("--batch_size", type=int, default=100)
  ap.add_argument("--latent_dim", type=int, default=64)
  ap.add_argument("--alpha", type=float, default=1.0)
  ap.add_argument("--warmup", type=int, default=5)
  ap.add_argument("--lr", type=float, default=1e-3)
  ap.add_argument("--num_samples", type=int, default=10, help="N of the eq 11 estimate")
  ap.add_argument("--prior_samples", type=int, default=1000)
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args()
  torch.set_num_threads(args.threads)
  torch.manual_seed(args.seed)
  rng = np.random.default_rng(args.seed)

  digits, labels = load(args.mnist_dir, "train")
  digits, labels = digits[: args.num_train], labels[: args.num_train]
  items, item_labels = load(args.fashion_dir, "train")
  by_class = [np.flatnonzero(item_labels == c) for c in range(10)]
  model = build(args.latent_dim, args.alpha, args.warmup)
  opt = torch.optim.Adam(model.parameters(), lr=args.lr)
  eye = np.eye(10, dtype=np.float32)
  started = time.perf_counter()
  steps = len(digits) // args.batch_size
  for epoch in range(args.epochs):
    model.train()
    order = rng.permutation(len(digits))
    partner = np.array([rng.choice(by_class[c]) for c in labels[order]])
    total = 0.0
    for step in range(steps):
      idx = slice(step * args.batch_size, (step + 1) * args.batch_size)
      batch = {
        "digit": torch.bernoulli(torch.from_numpy(digits[order[idx]])),
        "fashion": torch.bernoulli(torch.from_numpy(items[partner[idx]])),
        "label": torch.from_numpy(eye[labels[order[idx]]]),
      }
      opt.zero_grad(set_to_none=True)
      # epoch is 0 in the first epoch, as this project's warm-up weight (k-1)/N.
      out = model(MultimodalBaseDataset(data=batch), epoch=epoch)
      out.loss.backward()
      opt.step()
      total += out.loss.item()
    print(f"epoch {epoch + 1}/{args.epochs}: loss {total / steps:.2f}", flush=True)
  seconds = time.perf_counter() - started

  model.eval()
  test = dict(np.load(args.test_npz))
  data = {
    m: torch.from_numpy(test[m].reshape(len(test["label"]), -1).astype(np.float32))
    for m in MODALITIES
  }
  inputs = MultimodalBaseDataset(data=data)
  generated, values, how = {}, {}, {}
  with torch.no_grad():
    for target in MODALITIES:
      others = [m for m in MODALITIES if m != target]
      for r in (1, 2):
        for given in combinations(others, r):
          key = f"{target}|{','.join(sorted(given))}"
          how[key] = "its encoder" if r == 1 else "the product of its encoders' Gaussians"
          z = model.encode(inputs, cond_mod=list(given), N=1).z
          z = z.reshape(-1, z.shape[-1])
          generated[key] = mean_of(target, model.decoders[target](z).reconstruction).numpy()
          zs = model.encode(inputs, cond_mod=list(given), N=args.num_samples).z
          logits = model.decoders[target](zs.reshape(-1, zs.shape[-1])).reconstruction
          tiled = data[target].repeat(args.num_samples, 1)
          values[key] = float(
            log_likelihood(target, logits, tiled).reshape(args.num_samples, -1).mean(0).mean()
          )
    z = torch.randn(args.prior_samples, args.latent_dim)
    for m in MODALITIES:
      generated[f"prior/{m}"] = mean_of(m, model.decoders[m](z).reconstruction).numpy()
  np.savez(args.output, **generated)
  record = {
    "values": values,
    "inference": how,
    "train_seconds": seconds,
    "epochs": args.epochs,
    "parameters": sum(p.numel() for p in model.parameters()),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    "torch": torch.__version__,
  }
  with open(os.path.splitext(args.output)[0] + ".json", "w") as f:
    json.dump(record, f, indent=2)
  print(f"RESULT trained {args.epochs} epochs in {seconds:.1f} s; wrote {args.output}", flush=True)


if __name__ == "__main__":
  main()
