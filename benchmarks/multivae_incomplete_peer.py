#!/usr/bin/env python3
"""The PyTorch peer on incomplete data: MultiVae's MoPoE or MVAE trained through MultiVae's
`IncompleteDataset` (a boolean mask per modality) on the very batches this project's pipeline
trains its JMVAE-kl on (the same examples, bits, order and masks), then asked to generate each
modality from each set of the others on a test set it is given.

Runs ONLY in the peer venv (torch 2.13.0+cpu, multivae 1.0.3); it imports neither this project
nor TensorFlow. benchmarks/incomplete_mnist.py exports the batches, runs it and scores what it
writes with this project's classifiers:

    /work/peer-venv/bin/python benchmarks/multivae_incomplete_peer.py --model=mopoe \\
        --train_npz=TRAIN.npz --test_npz=TEST.npz --output=OUT.npz

The files (written by benchmarks/incomplete_mnist.py): `modalities` (the names, in order) and
`kinds` ("image" or "class", one each); per modality `m`, an image's binarised pixels packed by
np.packbits [E, 98] (784 bits) or a class as int8 [E] (-1 where absent); TRAIN.npz also
`present_m`, bool [E]: False where the example lacks m (its value is then zeros, as MultiVae's
`IncompleteDataset` asks: any value of the right shape). Row e is the e-th example of the
training stream: step t reads rows t*B .. (t+1)*B - 1. TEST.npz's examples are complete.

Networks: the paper's MNIST MLPs as multivae_peer.py defines them, one encoder and one decoder
per modality: D512R-D512R -> Dense(latent) mean and a softplus variance head (MultiVae's
`log_covariance` = log(softplus + 1e-6)); decoders D512R-D512R-D784 Bernoulli logits (an
image) or D10 categorical logits (a class). Neither model has a joint encoder: a set of
modalities is read by the product of its experts' Gaussians (MVAE: with the prior N(0, I) as
one more expert, always; MoPoE: the prior joins only the product of every modality), an
example's missing experts left out of it.

What each objective makes of an incomplete example (multivae/models/{mopoe,mvae}):
  * MoPoE: z from one subset posterior drawn uniformly among the subsets the example holds
    entirely, the KL of each of those (their average), the likelihood of the modalities it
    holds; the batch mean over every example (absent terms counted as 0).
  * MVAE: the ELBO of the product of the experts it holds (`use_subsampling=False`), plus, with
    subsampling, each single modality's own ELBO over the examples holding it; each ELBO a mean
    over the examples it covers (so the few labelled examples of a batch weigh as much in the
    label's ELBO as a whole batch would). `--mvae_subsampling=auto` follows MultiVae's docs
    (MVAEConfig): on for complete data, off for data that is already incomplete.

Training: a plain loop (no MultiVae trainer), `--steps` batches (default every one in the
file), Adam (lr 1e-3, eps 1e-7 as Keras'), no warm-up: MVAE's warmup=0 (KL weight 1 from the
first step), MoPoE has none. A batch is an IncompleteDataset where the file has any absent
value, else a MultimodalBaseDataset (MultiVae's complete-data path; MoPoE then picks its
mixture components deterministically).

Evaluation on the test set, for each target m and each non-empty set G of the other modalities
(key "m|G", G's names sorted and comma-separated):
  * generated: the mean of p(m|z) for one z ~ q(z|G) (MultiVae's `encode(cond_mod=G, N=1)`):
    what the caller's classifier reads for coherence (an image), or its argmax (a class);
  * values: eq 11's form, as this project's estimate: (1/N) sum_n log p(m|z_n), z_n ~ q(z|G)
    (`encode(cond_mod=G, N)`), the log-likelihood by MultiVae's own `recon_log_probs[m]`;
  * compute_cond_nll: MultiVae's own estimator, `compute_cond_nll(inputs, G, [m], k_iwae=N)`:
    log (1/N) sum_n p(m|z_n) with z_n ~ q(z|G) (a log of the mean, not a mean of logs: a tighter
    estimate of log E_q p(m|z)), its NLL negated back to a log-likelihood.
"""

import argparse
import json
import os
import resource
import sys
import time
from importlib import metadata
from itertools import combinations

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# multivae_peer stubs torchvision's registrations: it comes before multivae.
# isort: off
from multivae_peer import MLPDecoder, MLPEncoder  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from multivae.data.datasets.base import IncompleteDataset, MultimodalBaseDataset  # noqa: E402
from multivae.models import MVAE, MoPoE, MoPoEConfig, MVAEConfig  # noqa: E402
# isort: on

PIXELS = 784
NUM_CLASSES = 10
DIMS = {"image": PIXELS, "class": NUM_CLASSES}
DISTS = {"image": "bernoulli", "class": "categorical"}


def build(name, kinds, latent_dim, subsampling):
  """MultiVae's `name` ("mopoe" or "mvae") over the modalities {name: kind}."""
  common = dict(
    n_modalities=len(kinds),
    latent_dim=latent_dim,
    input_dims={m: (DIMS[k],) for m, k in kinds.items()},
    decoders_dist={m: DISTS[k] for m, k in kinds.items()},
    uses_likelihood_rescaling=False,
  )
  encoders = {m: MLPEncoder(DIMS[k], latent_dim, "softplus") for m, k in kinds.items()}
  decoders = {m: MLPDecoder(latent_dim, DIMS[k]) for m, k in kinds.items()}
  if name == "mopoe":
    return MoPoE(MoPoEConfig(**common, beta=1.0), encoders=encoders, decoders=decoders)
  config = MVAEConfig(**common, beta=1.0, warmup=0, use_subsampling=subsampling, k=0)
  return MVAE(config, encoders=encoders, decoders=decoders)


def values_of(kind, stored):
  """A modality's stored values -> float tensor [E, D]: bits unpacked, classes one-hot (an
  absent class, -1, all zeros)."""
  if kind == "image":
    return torch.from_numpy(np.unpackbits(stored, axis=-1)[:, :PIXELS].astype(np.float32))
  ids = torch.from_numpy(np.asarray(stored, np.int64))
  return F.one_hot(ids.clamp(min=0), NUM_CLASSES).float() * (ids >= 0).unsqueeze(-1).float()


def mean_of(kind, logits):
  return torch.sigmoid(logits) if kind == "image" else F.softmax(logits, -1)


def directions(names):
  """{"m|G": (m, G)} for each modality m and each non-empty set G of the others."""
  out = {}
  for target in names:
    others = [m for m in names if m != target]
    for r in range(1, len(others) + 1):
      for given in combinations(others, r):
        out[f"{target}|{','.join(sorted(given))}"] = (target, list(given))
  return out


def inference_of(name, given):
  """How z is drawn given the modalities `given` (none of them the target)."""
  experts = [f"q(z|{m})" for m in sorted(given)]
  if name == "mvae":
    return "the product of N(0, I) and " + " and ".join(experts)
  if len(experts) == 1:
    return f"its encoder {experts[0]}"
  return "the product of " + " and ".join(experts)  # the prior joins only that of every one


def peak_rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--model", choices=("mopoe", "mvae"), required=True)
  ap.add_argument("--train_npz", required=True)
  ap.add_argument("--test_npz", required=True)
  ap.add_argument("--output", required=True, help="the .npz written (a .json beside it)")
  ap.add_argument("--steps", type=int, default=0, help="training steps (0: every batch in file)")
  ap.add_argument("--batch_size", type=int, default=100)
  ap.add_argument("--latent_dim", type=int, default=64)
  ap.add_argument("--lr", type=float, default=1e-3)
  ap.add_argument("--adam_epsilon", type=float, default=1e-7)
  ap.add_argument(
    "--mvae_subsampling",
    choices=("auto", "on", "off"),
    default="auto",
    help="MVAE's use_subsampling; auto: as MultiVae's docs advise, on for complete data, off "
    "for data that is already incomplete",
  )
  ap.add_argument("--num_samples", type=int, default=10, help="N of both estimates")
  ap.add_argument("--eval_chunk", type=int, default=1000)
  ap.add_argument("--log_every", type=int, default=100, help="print the mean loss every N steps")
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--flush_denormal", action="store_true", help="FTZ/DAZ (stock: off)")
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args()
  torch.set_num_threads(args.threads)
  if args.flush_denormal and not torch.set_flush_denormal(True):
    print("warning: --flush_denormal unsupported on this CPU", flush=True)
  torch.manual_seed(args.seed)

  train = np.load(args.train_npz)
  names = [str(n) for n in train["modalities"]]
  kinds = dict(zip(names, (str(k) for k in train["kinds"])))
  rows = len(train[names[0]])
  available = rows // args.batch_size
  steps = args.steps or available
  if steps > available:
    raise SystemExit(
      f"{args.train_npz} holds {available} batches of {args.batch_size}, {steps} asked"
    )
  present = {m: np.asarray(train[f"present_{m}"], bool) for m in names}
  used = slice(0, steps * args.batch_size)
  incomplete = not all(p[used].all() for p in present.values())
  subsampling = {"on": True, "off": False, "auto": not incomplete}[args.mvae_subsampling]
  model = build(args.model, kinds, args.latent_dim, subsampling)
  parameters = sum(p.numel() for p in model.parameters())
  absent = {m: int((~p[used]).sum()) for m, p in present.items()}
  print(
    f"torch {torch.__version__}, multivae {metadata.version('multivae')}, "
    f"{torch.get_num_threads()} threads; {model.model_name}"
    + (f" (use_subsampling={subsampling})" if args.model == "mvae" else "")
    + f", {parameters:,} parameters; {steps} steps of {args.batch_size}; absent in the examples "
    f"read: {absent}; batches as "
    + ("IncompleteDataset (masks)" if incomplete else "MultimodalBaseDataset (complete)"),
    flush=True,
  )
  opt = torch.optim.Adam(model.parameters(), lr=args.lr, eps=args.adam_epsilon)
  stored = {m: train[m] for m in names}

  losses, window = [], []
  model.train()
  started = time.perf_counter()
  for step in range(steps):
    rows = slice(step * args.batch_size, (step + 1) * args.batch_size)
    data = {m: values_of(kinds[m], stored[m][rows]) for m in names}
    if incomplete:
      masks = {m: torch.from_numpy(present[m][rows]) for m in names}
      inputs = IncompleteDataset(data=data, masks=masks)
    else:
      inputs = MultimodalBaseDataset(data=data)
    opt.zero_grad(set_to_none=True)
    out = model(inputs)
    out.loss.backward()
    opt.step()
    window.append(out.loss.item())
    if len(window) == args.log_every or step == steps - 1:
      losses.append((step + 1, float(np.mean(window))))
      print(f"step {step + 1}/{steps}: loss {losses[-1][1]:.2f}", flush=True)
      window = []
      if not np.isfinite(losses[-1][1]):
        raise SystemExit(f"the loss is not finite at step {step + 1}")
  seconds = time.perf_counter() - started
  train_peak = peak_rss_mb()

  model.eval()
  test = np.load(args.test_npz)
  data = {m: values_of(kinds[m], test[m]) for m in names}
  n = len(data[names[0]])
  generated, values, own, how = {}, {}, {}, {}
  started_eval = time.perf_counter()
  with torch.no_grad():
    for key, (target, given) in directions(names).items():
      how[key] = inference_of(args.model, given)
      eq11, cond, means = [], [], []
      for start in range(0, n, args.eval_chunk):
        part = {m: v[start : start + args.eval_chunk] for m, v in data.items()}
        inputs = MultimodalBaseDataset(data=part)
        size = len(part[target])
        z = model.encode(inputs, cond_mod=given, N=1).z.reshape(-1, args.latent_dim)
        means.append(mean_of(kinds[target], model.decoders[target](z).reconstruction).numpy())
        zs = model.encode(inputs, cond_mod=given, N=args.num_samples).z
        logits = model.decoders[target](zs.reshape(-1, args.latent_dim)).reconstruction
        tiled = part[target].repeat(args.num_samples, 1)
        ll = model.recon_log_probs[target](logits, tiled).reshape(args.num_samples, size, -1)
        eq11.append(ll.sum(-1).mean(0))
        nll = model.compute_cond_nll(inputs, given, [target], k_iwae=args.num_samples)
        cond.append(-float(nll[target]) * size)
      values[key] = float(torch.cat(eq11).mean())
      own[key] = sum(cond) / n
      generated[key] = np.concatenate(means).astype(np.float16)
  np.savez(args.output, **generated)
  record = {
    "model": model.model_name,
    "values": values,
    "compute_cond_nll": own,
    "inference": how,
    "num_samples": args.num_samples,
    "num_test": n,
    "steps": steps,
    "batch_size": args.batch_size,
    "absent": absent,
    "incomplete": incomplete,
    "mvae_use_subsampling": subsampling if args.model == "mvae" else None,
    "losses": losses,
    "train_seconds": seconds,
    "eval_seconds": time.perf_counter() - started_eval,
    "parameters": parameters,
    "train_peak_rss_mb": train_peak,
    "peak_rss_mb": peak_rss_mb(),
    "threads": torch.get_num_threads(),
    "flush_denormal": args.flush_denormal,
    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
    "torch": torch.__version__,
    "multivae": metadata.version("multivae"),
  }
  with open(os.path.splitext(args.output)[0] + ".json", "w") as f:
    json.dump(record, f, indent=2)
  print(f"RESULT trained {steps} steps in {seconds:.1f} s; wrote {args.output}", flush=True)


if __name__ == "__main__":
  main()
