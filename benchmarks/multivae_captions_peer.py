#!/usr/bin/env python3
"""The PyTorch peer on captions: MultiVae's JMVAE (its JMVAE-kl objective) on MNIST images and
captions of their class, the caption a categorical per position (MultiVae's "categorical"
decoder distribution), trained on the very batches this project's runner trains on, then asked
to generate each modality from the other on a test set it is given.

Runs ONLY in the peer venv (torch 2.13.0+cpu, multivae 1.0.3); it imports neither this project
nor TensorFlow. benchmarks/captions_peer.py exports the batches, runs it and scores what it
writes with this project's classifier and caption parser:

    /work/peer-venv/bin/python benchmarks/multivae_captions_peer.py \\
        --train_npz=TRAIN.npz --test_npz=TEST.npz --output=OUT.npz --epochs=10

The captions (from benchmarks/captions_peer.py): token columns [.., T] per example (0 unknown,
1 <eos>, 2+ the words; -1 padding), made one-hot here with ALL-ZERO rows for padding, as this
project's tokens modality. MultiVae's categorical log-density (`multivae.models.base.
base_utils.cross_entropy`: sum_v target_v log softmax(logits)_v per position) is then 0 with
gradient 0 on a padding row, so padding counts nowhere in its loss either (MultiVae's own CUB
text data one-hot encodes a <pad> token instead, which its loss then counts).

Networks: the image as the paper's MNIST MLPs (multivae_peer.py's: D512R-D512R branches and
encoders, D512R-D512R-D784 Bernoulli decoder, softplus variance heads); the caption by MLPs over
its flattened one-hot (T * V inputs): D512R-D512R encoders/branch, and the decoder
`--text_decoder=mlp` D512R-D512R-D(T*V) (default) or `cub` MultiVae's own text decoder
(`multivae.models.nn.cub.CubTextDecoderMLP`: D512R-D(T*V)), each reshaped to (T, V) logits.
MultiVae's own text encoder (`CubTextEncoder`) is a transformer for CUB's 32-token sentences (4
layers of 512, dropout 0.5): not used.

Training: a plain loop (no MultiVae trainer), Adam (lr 1e-3, eps 1e-7 as Keras'), warm-up in
MultiVae's way (`epoch / warmup` on the KL and the alpha terms together, epoch counted from 0).
"""

import argparse
import json
import os
import resource
import sys
import time
import types
from importlib import metadata

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# multivae_peer stubs torchvision's registrations: it comes before multivae.
# isort: off
from multivae_peer import HIDDEN, GaussianHeads, mlp  # noqa: E402

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
from multivae.models.nn.cub import CubTextDecoderMLP  # noqa: E402
from pythae.models.base.base_utils import ModelOutput  # noqa: E402
# isort: on

IMAGE, CAPTION = "image", "caption"
PIXELS = 784


class FlatEncoder(BaseEncoder):
  """q(z|m): flattened input -> D512R-D512R -> Dense(latent) mean, softplus variance."""

  def __init__(self, in_dim, latent_dim):
    BaseEncoder.__init__(self)
    self.latent_dim = latent_dim
    self.body = nn.Sequential(nn.Flatten(), mlp(in_dim))
    self.heads = GaussianHeads(HIDDEN, latent_dim, "softplus")

  def forward(self, x):
    mu, log_var = self.heads(self.body(x))
    return ModelOutput(embedding=mu, log_covariance=log_var)


class JointEncoder(BaseJointEncoder):
  """q(z|x,w): a D512R-D512R branch per modality over its flattened input, concatenated
  (1024) -> heads."""

  def __init__(self, in_dims, latent_dim):
    BaseJointEncoder.__init__(self)
    self.latent_dim = latent_dim
    self.branches = nn.ModuleDict(
      {m: nn.Sequential(nn.Flatten(), mlp(d)) for m, d in in_dims.items()}
    )
    self.heads = GaussianHeads(HIDDEN * len(in_dims), latent_dim, "softplus")

  def forward(self, x: dict):
    mu, log_var = self.heads(torch.cat([self.branches[m](x[m]) for m in self.branches], dim=1))
    return ModelOutput(embedding=mu, log_covariance=log_var)


class MLPDecoder(BaseDecoder):
  """p(m|z): D512R-D512R-D(prod shape) logits, reshaped to `shape`."""

  def __init__(self, latent_dim, shape):
    BaseDecoder.__init__(self)
    self.shape = tuple(shape)
    self.net = nn.Sequential(mlp(latent_dim), nn.Linear(HIDDEN, int(np.prod(shape))))

  def forward(self, z):
    out = self.net(z)
    return ModelOutput(reconstruction=out.reshape(*z.shape[:-1], *self.shape))


def build(positions, vocabulary, latent_dim, alpha, warmup, text_decoder):
  shapes = {IMAGE: (PIXELS,), CAPTION: (positions, vocabulary)}
  flat = {m: int(np.prod(s)) for m, s in shapes.items()}
  config = JMVAEConfig(
    n_modalities=2,
    latent_dim=latent_dim,
    input_dims=shapes,
    decoders_dist={IMAGE: "bernoulli", CAPTION: "categorical"},
    alpha=alpha,
    warmup=warmup,
    beta=1.0,
    uses_likelihood_rescaling=False,
  )
  encoders = {m: FlatEncoder(d, latent_dim) for m, d in flat.items()}
  if text_decoder == "cub":
    caption = CubTextDecoderMLP(
      types.SimpleNamespace(input_dim=shapes[CAPTION], latent_dim=latent_dim)
    )
  else:
    caption = MLPDecoder(latent_dim, shapes[CAPTION])
  decoders = {IMAGE: MLPDecoder(latent_dim, shapes[IMAGE]), CAPTION: caption}
  joint = JointEncoder(flat, latent_dim)
  return JMVAE(config, encoders=encoders, decoders=decoders, joint_encoder=joint)


def one_hot(ids, vocabulary):
  """Token columns int [.., T] (-1: padding) -> float [.., T, V], padding rows all zero."""
  ids = torch.from_numpy(np.asarray(ids, np.int64))
  return F.one_hot(ids.clamp(min=0), vocabulary).float() * (ids >= 0).unsqueeze(-1).float()


def bits(packed):
  """Packed image bits uint8 [B, 98] -> float [B, 784] in {0, 1}."""
  return torch.from_numpy(np.unpackbits(packed, axis=-1)[:, :PIXELS].astype(np.float32))


def log_likelihood(target, recon, values):
  """log p(target|z) per example (rows: draws x examples), padding rows adding 0."""
  if target == IMAGE:
    return -F.binary_cross_entropy_with_logits(recon, values, reduction="none").sum(-1)
  return (F.log_softmax(recon, -1) * values).sum((-2, -1))


def mean_of(target, recon):
  return torch.sigmoid(recon) if target == IMAGE else F.softmax(recon, -1)


def peak_rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--train_npz", required=True, help="images [E, N, 98] packed, captions [E, N, T]")
  ap.add_argument("--test_npz", required=True, help="image [N, 98] packed, caption [N, T]")
  ap.add_argument("--output", required=True, help="the .npz written (a .json beside it)")
  ap.add_argument("--epochs", type=int, default=10)
  ap.add_argument("--batch_size", type=int, default=100)
  ap.add_argument("--latent_dim", type=int, default=64)
  ap.add_argument("--alpha", type=float, default=1.0)
  ap.add_argument("--warmup", type=int, default=2)
  ap.add_argument("--lr", type=float, default=1e-3)
  ap.add_argument("--adam_epsilon", type=float, default=1e-7)
  ap.add_argument("--text_decoder", choices=("mlp", "cub"), default="mlp")
  ap.add_argument("--num_samples", type=int, default=10, help="N of the eq 11 estimate")
  ap.add_argument("--prior_samples", type=int, default=1000)
  ap.add_argument("--eval_chunk", type=int, default=1000)
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--flush_denormal", action="store_true", help="FTZ/DAZ (stock: off)")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--speed_steps", type=int, default=0, help="only time this many steps")
  ap.add_argument("--speed_warmup", type=int, default=20, help="untimed steps before them")
  args = ap.parse_args()
  torch.set_num_threads(args.threads)
  if args.flush_denormal and not torch.set_flush_denormal(True):
    print("warning: --flush_denormal unsupported on this CPU", flush=True)
  torch.manual_seed(args.seed)

  train = np.load(args.train_npz)
  images, captions = train["images"], train["captions"]
  vocabulary = int(train["vocabulary_size"])
  positions = captions.shape[-1]
  if images.shape[0] < (1 if args.speed_steps else args.epochs):
    raise SystemExit(f"{args.train_npz} holds {images.shape[0]} epochs, {args.epochs} asked")
  steps = images.shape[1] // args.batch_size
  model = build(positions, vocabulary, args.latent_dim, args.alpha, args.warmup, args.text_decoder)
  parameters = sum(p.numel() for p in model.parameters())
  print(
    f"torch {torch.__version__}, multivae {metadata.version('multivae')}, "
    f"{torch.get_num_threads()} threads, flush_denormal={args.flush_denormal}; "
    f"{parameters:,} parameters; captions (T, V) = ({positions}, {vocabulary}); "
    f"{steps} steps of {args.batch_size} an epoch",
    flush=True,
  )
  opt = torch.optim.Adam(model.parameters(), lr=args.lr, eps=args.adam_epsilon)

  def step(epoch, index):
    rows = slice(index * args.batch_size, (index + 1) * args.batch_size)
    batch = {
      IMAGE: bits(images[epoch, rows]),
      CAPTION: one_hot(captions[epoch, rows], vocabulary),
    }
    opt.zero_grad(set_to_none=True)
    # epoch counts from 0, so the first epoch's weight is 0, as this project's (k-1)/N.
    out = model(MultimodalBaseDataset(data=batch), epoch=epoch)
    out.loss.backward()
    opt.step()
    return out.loss.item()

  if args.speed_steps:  # a speed window only: untimed steps, then timed ones; no evaluation
    model.train()
    for index in range(args.speed_warmup):
      step(0, index % steps)
    t0 = time.perf_counter()
    for index in range(args.speed_warmup, args.speed_warmup + args.speed_steps):
      step(0, index % steps)
    rate = args.speed_steps * args.batch_size / (time.perf_counter() - t0)
    print(f"RESULT multivae_captions examples_per_sec={rate:.1f}", flush=True)
    return
  epoch_seconds = []
  started = time.perf_counter()
  for epoch in range(args.epochs):
    model.train()
    t0 = time.perf_counter()
    total = sum(step(epoch, index) for index in range(steps))
    epoch_seconds.append(time.perf_counter() - t0)
    print(
      f"epoch {epoch + 1}/{args.epochs}: loss {total / steps:.2f}, {epoch_seconds[-1]:.1f} s",
      flush=True,
    )
  seconds = time.perf_counter() - started
  train_peak = peak_rss_mb()

  model.eval()
  test = np.load(args.test_npz)
  data = {IMAGE: bits(test["image"]), CAPTION: one_hot(test["caption"], vocabulary)}
  n = len(data[IMAGE])
  tokens = float(data[CAPTION].sum())
  directions = {  # key: (target, given)
    "image|caption": (IMAGE, [CAPTION]),
    "caption|image": (CAPTION, [IMAGE]),
    "image|caption,image": (IMAGE, [CAPTION, IMAGE]),
    "caption|caption,image": (CAPTION, [CAPTION, IMAGE]),
  }
  generated, values, own, how = {}, {}, {}, {}
  started_eval = time.perf_counter()
  with torch.no_grad():
    for key, (target, given) in directions.items():
      how[key] = "its joint encoder" if len(given) == 2 else f"its encoder q(z|{given[0]})"
      eq11, iwae, means = [], [], []
      for start in range(0, n, args.eval_chunk):
        part = {m: v[start : start + args.eval_chunk] for m, v in data.items()}
        inputs = MultimodalBaseDataset(data=part)
        if len(given) == 1:  # what is generated: one draw of z, the mean of p(target|z)
          z = model.encode(inputs, cond_mod=given, N=1).z.reshape(-1, args.latent_dim)
          means.append(mean_of(target, model.decoders[target](z).reconstruction).numpy())
        zs = model.encode(inputs, cond_mod=given, N=args.num_samples).z
        recon = model.decoders[target](zs.reshape(-1, args.latent_dim)).reconstruction
        tiled = part[target].repeat(args.num_samples, *([1] * (part[target].dim() - 1)))
        ll = log_likelihood(target, recon, tiled).reshape(args.num_samples, -1)
        eq11.append(ll.mean(0))
        # MultiVae's own compute_cond_nll: log of the mean of p(target|z) over the draws.
        cond = model.compute_cond_nll(inputs, given, [target], k_iwae=args.num_samples)
        iwae.append(-cond[target] * len(part[target]))
      values[key] = float(torch.cat(eq11).mean())
      own[key] = float(sum(iwae) / n)
      if means:
        generated[key] = np.concatenate(means)
    z = torch.randn(args.prior_samples, args.latent_dim)
    for m in (IMAGE, CAPTION):
      generated[f"prior/{m}"] = mean_of(m, model.decoders[m](z).reconstruction).numpy()
  per_token = {k: v * n / tokens for k, v in values.items() if k.startswith(CAPTION)}
  np.savez(args.output, **generated)
  record = {
    "values": values,
    "per_token": per_token,
    "compute_cond_nll": own,
    "inference": how,
    "train_seconds": seconds,
    "epoch_seconds": epoch_seconds,
    "eval_seconds": time.perf_counter() - started_eval,
    "examples_per_epoch": steps * args.batch_size,
    "epochs": args.epochs,
    "parameters": parameters,
    "train_peak_rss_mb": train_peak,
    "peak_rss_mb": peak_rss_mb(),
    "threads": torch.get_num_threads(),
    "flush_denormal": args.flush_denormal,
    "text_decoder": args.text_decoder,
    "torch": torch.__version__,
    "multivae": metadata.version("multivae"),
  }
  with open(os.path.splitext(args.output)[0] + ".json", "w") as f:
    json.dump(record, f, indent=2)
  print(f"RESULT trained {args.epochs} epochs in {seconds:.1f} s; wrote {args.output}", flush=True)


if __name__ == "__main__":
  main()
