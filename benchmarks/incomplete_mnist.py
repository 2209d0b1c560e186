r"""Training on incomplete data (docs/INCOMPLETE.md): what a model that learns from every example
gains over one that needs complete ones, at an equal budget, beside MultiVae's models for
incomplete data.

MNIST with its label on 1%, 10% and 100% of the 50,000 training images (every image present;
`--data_options=missing=label:0.99`, 0.9, none), each share one table of rows:

  ours           our JMVAE-kl on every example (`--dataset=mnist --data_options=missing=label:S`:
                 an image alone trains the image's bound, a pair eq 10), each example's bound
                 counted once (--incomplete_weighting=example, the default)
  ours_pattern   the same, each pattern of held modalities weighing the same in a batch
                 (--incomplete_weighting=pattern: a batch's one labelled pair at 1% as much
                 as its 99 images alone)
  ours_complete  our JMVAE-kl on the complete pairs only (what MultiVae's JMVAE could do: it
                 refuses masks): an OwnDataSet of the labelled examples (uint8 images, binarised
                 as MNIST's pipeline does, with its bits stream), trained for the SAME number of
                 optimizer steps (so many more epochs of the small set), scored on MNIST's test
                 split by the mnist data set object
  mopoe, mvae    MultiVae's MoPoE and MVAE (benchmarks/multivae_incomplete_peer.py, in the peer
                 venv) through its IncompleteDataset, on the very training batches of `ours`
                 (exported: the same images, bits, order and label masks, which are
                 missing.hidden_examples(50,000, S, data seed 0, "label"))
  classifier     a plain classifier of the labelled images alone (D512R-D512R-D10 as the image
                 encoder, cross-entropy, Adam 1e-3, the same number of steps on the labelled
                 examples' stream: no early stopping), the floor for image -> label

and three modalities, `--dataset=mnist_fashion` (digit, fashion, label) with the digit and the
fashion item each hidden from 50% of the training examples, independently
(`--data_options=missing=digit:0.5,missing=fashion:0.5`; the script prints how many examples
keep both, about 12,500 of 50,000), rows ours, ours_pattern, ours_complete (the complete triples only: the
data set's own stream with the examples that lack a modality filtered out, its Fashion
partners drawn afresh each epoch as for `ours`; a PipelineDataSet), mopoe and mvae.

Every row: latent 64, batch 100, Adam lr 1e-3 (eps 1e-7), no KL warm-up (weight 1 from the
first step), seed 0 everywhere (weights, data, masks), `--epochs` x 500 steps (epochs of the
50,000; `--steps` overrides), `--num_test` test examples (the first; the same bits for every
row), `--num_samples` N draws of z for each log-likelihood.

What is measured, per row and direction "target|given":
  * coherence: the share of test examples whose generated target (the mean of p(target|z) for
    one z ~ q(z|given)) is read as the example's class: an image by this project's coherence
    classifier of that modality (trained once on the real training images, all labelled, and
    cached: jmvae_tf/evaluation/coherence.py), a label by its argmax. label|image is the
    image -> label accuracy. The peer's generated means are read here by the same classifiers.
  * log-likelihoods: ours `jt.evaluate`'s eq 11, (1/N) sum_n log p(target|z_n), z_n ~ q(z|given)
    (JMVAE-kl's encoder of the given modalities); the peer the same formula with z_n from
    MultiVae's `encode(cond_mod=given)` (the product of the given modalities' experts; MVAE's
    with the prior), and beside it MultiVae's own `compute_cond_nll` with k = N (log of the mean
    of p(target|z_n) over the same kind of draws: a tighter estimate, not eq 11). The
    classifier's log p(label|image) is exact: its mean test log-softmax of the true class.

  python benchmarks/incomplete_mnist.py --peer_python=/work/peer-venv/bin/python \
      --data_dir=../shared/data/mnist --work_dir=/tmp/incomplete --output=/tmp/incomplete.json
  python benchmarks/incomplete_mnist.py --peer_python=/work/peer-venv/bin/python \
      --epochs=0.2 --num_test=500 --work_dir=/tmp/incomplete_smoke     # a smoke test, minutes

Prints the CPU (model, cores, flags), the load at each stage, a Markdown table per experiment,
and writes every number to `--output` (JSON; default WORK/incomplete.json). The peer runs at
2 threads (`--peer_threads`) with OMP_WAIT_POLICY=PASSIVE (`--peer_omp_wait_policy`; stock
PyTorch's spinning threads ran 15x slower here beside another job, captions_peer.py, and the
numbers are the same bit for bit) and stock denormals (`--peer_flush_denormal` for FTZ/DAZ:
after some 600 steps stock PyTorch slows down on subnormal Adam state, multivae_peer.py).
The training seconds of the tables are for orientation only: the rows run one after another
on a machine that may be shared; train_throughput.py and captions_peer.py measure speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PEER = "benchmarks/multivae_incomplete_peer.py"

BATCH, LATENT_DIM, LEARNING_RATE, SEED = 100, 64, 1e-3, 0
ROWS = ("ours", "ours_pattern", "ours_complete", "mopoe", "mvae", "classifier")
# Our every-example rows: the row, its incomplete_weighting (docs/INCOMPLETE.md).
OURS = (("ours", "example"), ("ours_pattern", "pattern"))
EXPERIMENTS = ("mnist", "mnist_fashion")
TITLES = {
  "ours": "JMVAE-kl (ours), every example",
  "ours_pattern": "JMVAE-kl (ours), every example, each pattern weighed the same",
  "ours_complete": "JMVAE-kl (ours), complete examples only",
  "mopoe": "MoPoE (MultiVae), masks",
  "mvae": "MVAE (MultiVae), masks",
  "classifier": "classifier of the labelled images",
}


def load():
  out = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
  return out[out.find("load average") + len("load average: ") :] if "load average" in out else out


def run(cmd, env=None):
  """(output, wall seconds) of `cmd`; a RuntimeError with its last lines where it fails."""
  started = time.perf_counter()
  proc = subprocess.run(
    cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )
  if proc.returncode:
    raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
  return proc.stdout, time.perf_counter() - started


def budget_dataset(data, steps):
  """`data` (a DataSet) as jt.train reads it, with one epoch of `steps` batches of its endless
  training stream: training one such epoch reads the very batches an uninterrupted run of
  steps / steps_per_epoch epochs would (the stream is a pure function of the data seed and the
  global step), so a budget need not be whole epochs of either set (checked: 2 epochs of 5,000
  and one budget epoch of 100 steps end with the same weights). Everything else is `data`'s
  own (the stream itself included: it counts its epochs by its own steps_per_epoch)."""
  from jmvae_tf.core.data import DataSet

  class Budget(DataSet):
    name, architecture = data.name, data.architecture
    options, provenance, hidden = data.options, data.provenance, data.hidden

    @property
    def modalities(self):
      return data.modalities

    def steps_per_epoch(self, batch_size):
      return steps

    def train_dataset(self, batch_size, seed, start_epoch=0):
      if start_epoch:
        raise ValueError("a budget is trained in one call, from its start")
      return data.train_dataset(batch_size, seed)

    def num_examples(self, split):
      return data.num_examples(split)

    def eval_dataset(self, split, batch_size, seed=0, num_examples=None):
      return data.eval_dataset(split, batch_size, seed, num_examples)

    def display_images(self, split, num_examples, seed=0):
      return data.display_images(split, num_examples, seed)

    def metadata(self, split, num_examples):
      return data.metadata(split, num_examples)

    def presence(self, seed):
      return data.presence(seed)

    def fingerprint(self, num_train=None):
      return data.fingerprint(num_train)

    def check_batch_size(self, batch_size):
      data.check_batch_size(batch_size)

    def has_held_out(self):
      return False  # no held-out pass inside the budget (the peer has none)

  return Budget()


def train_ours(model, data, steps):
  """Trains `model` on `data` for `steps` optimizer steps; (seconds, the mean training loss)."""
  import jmvae_tf as jt

  started = time.perf_counter()
  result = jt.train(
    model,
    budget_dataset(data, steps),
    epochs=1,
    warmup_epochs=0,
    batch_size=BATCH,
    learning_rate=LEARNING_RATE,
    data_seed=SEED,
    verbose=0,
  )
  return time.perf_counter() - started, float(result.history["loss"][-1])


def evaluate_ours(model, data, args, classifiers):
  import jmvae_tf as jt

  started = time.perf_counter()
  record = jt.evaluate(
    model,
    data,
    num_test=args.num_test,
    num_samples=args.num_samples,
    seed=SEED,
    data_seed=SEED,
    classifiers=classifiers,
    progress=False,
  )
  return {
    "values": record["values"],
    "coherence": record["coherence"]["pairs"],
    "prior_coherence": record["coherence"]["prior"],
    "inference": record["coherence"]["inference"],
    "estimator": (
      f"eq 11, (1/N) sum_n log p(target|z_n), z_n ~ q(z|given), N = {args.num_samples} "
      f"(jt.evaluate: {record['estimator']})"
    ),
    "eval_seconds": time.perf_counter() - started,
  }


def packed(images):
  """{0, 1} images [B, 28, 28, 1] -> uint8 [B, 98]."""
  import numpy as np

  return np.packbits(np.asarray(images).reshape(len(images), -1).astype(np.uint8), axis=-1)


def stored(kind, values, held=None):
  """A batch's values of one modality as the peer reads them: image bits packed, a class int8
  (-1 where not `held`)."""
  import numpy as np

  if kind == "image":
    return packed(values)
  classes = np.asarray(values).argmax(-1).astype(np.int8)
  return classes if held is None else np.where(held, classes, -1).astype(np.int8)


def export_train(data, kinds, steps, path, hidden):
  """The first `steps` training batches of `data` (data seed 0, what `ours` trains on), in
  order, with their masks, as the peer reads them; `hidden` ({modality: bool [N]}, from
  missing.hidden_examples) goes along for the record."""
  import numpy as np

  from jmvae_tf.core import missing

  columns = {m: [] for m in kinds}
  held = {m: [] for m in kinds}
  stream = iter(data.train_dataset(BATCH, SEED))
  for _ in range(steps):
    batch = next(stream)
    masks = missing.of_batch(batch) or {}
    for m, kind in kinds.items():
      present = masks[m].numpy() if m in masks else np.ones(BATCH, bool)
      columns[m].append(stored(kind, batch[m].numpy(), present))
      held[m].append(present)
  np.savez(
    path,
    modalities=np.array(list(kinds)),
    kinds=np.array(list(kinds.values())),
    **{m: np.concatenate(v) for m, v in columns.items()},
    **{f"present_{m}": np.concatenate(v) for m, v in held.items()},
    **{f"hidden_{m}": v for m, v in hidden.items()},
  )
  return {m: int((~np.concatenate(v)).sum()) for m, v in held.items()}


def export_test(data, kinds, num_test, path):
  """The first `num_test` test examples as evaluation reads them (data seed 0's bits)."""
  import numpy as np

  batch = next(iter(data.eval_dataset("test", num_test, SEED, num_test)))
  np.savez(
    path,
    modalities=np.array(list(kinds)),
    kinds=np.array(list(kinds.values())),
    **{m: stored(kind, batch[m].numpy()) for m, kind in kinds.items()},
  )


def run_peer(args, model, train_npz, test_npz, out, steps):
  """MultiVae's `model` trained and scored by the peer script; its record and generated means."""
  import numpy as np

  env = dict(os.environ)
  if args.peer_omp_wait_policy and args.peer_omp_wait_policy != "stock":
    env["OMP_WAIT_POLICY"] = args.peer_omp_wait_policy
  cmd = [
    args.peer_python,
    PEER,
    f"--model={model}",
    f"--train_npz={train_npz}",
    f"--test_npz={test_npz}",
    f"--output={out}",
    f"--steps={steps}",
    f"--batch_size={BATCH}",
    f"--latent_dim={LATENT_DIM}",
    f"--lr={LEARNING_RATE}",
    f"--num_samples={args.num_samples}",
    f"--mvae_subsampling={args.mvae_subsampling}",
    f"--threads={args.peer_threads}",
    f"--seed={SEED}",
  ] + (["--flush_denormal"] if args.peer_flush_denormal else [])
  log, seconds = run(cmd, env)
  print("  " + "\n  ".join(log.strip().splitlines()[-3:]), flush=True)
  with open(os.path.splitext(out)[0] + ".json") as f:
    record = json.load(f)
  record["command_seconds"] = seconds
  return record, dict(np.load(out))


def score_peer(record, generated, data, readers, truth, num_samples):
  """The peer's row: its generated means read by our readers (coherence), its estimates."""
  import numpy as np

  from jmvae_tf.evaluation import coherence

  shapes = {m.name: tuple(m.shape) for m in data.modalities}
  scores = {}
  for key, values in generated.items():
    target = key.split("|")[0]
    read = readers[target](np.asarray(values, np.float32).reshape((-1,) + shapes[target]))
    scores[key] = float(coherence.accuracy(read, truth).mean())
  how = "; ".join(f"{k}: {v}" for k, v in record["inference"].items())
  return {
    "values": record["values"],
    "compute_cond_nll": record["compute_cond_nll"],
    "coherence": scores,
    "inference": record["inference"],
    "estimator": (
      f"eq 11's form, (1/N) sum_n log p(target|z_n), z_n ~ MultiVae's encode(given) ({how}), "
      f"N = {num_samples}; compute_cond_nll: MultiVae's, log (1/N) sum_n p(target|z_n), "
      f"k = {num_samples}"
    ),
    "train_seconds": record["train_seconds"],
    "eval_seconds": record["eval_seconds"],
    "command_seconds": record["command_seconds"],
    "losses": record["losses"],
    "absent": record["absent"],
    "batches": "IncompleteDataset (masks)" if record["incomplete"] else "MultimodalBaseDataset",
    "mvae_use_subsampling": record["mvae_use_subsampling"],
    "parameters": record["parameters"],
    "peak_rss_mb": record["peak_rss_mb"],
  }


def classifier_row(train_data, data, steps, num_test):
  """A D512R-D512R-D10 classifier of images trained on `train_data`'s stream (its images and
  labels) for `steps` steps, scored on `data`'s first `num_test` test examples."""
  import numpy as np
  import tensorflow as tf
  import tf_keras as keras

  keras.utils.set_random_seed(SEED)
  network = keras.Sequential(
    [
      keras.layers.InputLayer(input_shape=(28, 28, 1)),
      keras.layers.Flatten(),
      keras.layers.Dense(512, activation="relu"),
      keras.layers.Dense(512, activation="relu"),
      keras.layers.Dense(10),
    ]
  )
  network.compile(
    optimizer=keras.optimizers.legacy.Adam(LEARNING_RATE, epsilon=1e-7),
    loss=keras.losses.CategoricalCrossentropy(from_logits=True),
  )
  stream = train_data.train_dataset(BATCH, SEED).map(lambda b: (b["image"], b["label"]))
  started = time.perf_counter()
  history = network.fit(stream, epochs=1, steps_per_epoch=steps, verbose=0)
  seconds = time.perf_counter() - started
  right, log_p = [], []
  for batch in data.eval_dataset("test", 500, SEED, num_test):
    logits = network(batch["image"], training=False)
    log_p.append(tf.reduce_sum(tf.nn.log_softmax(logits) * batch["label"], -1).numpy())
    right.append(logits.numpy().argmax(-1) == batch["label"].numpy().argmax(-1))
  return {
    "values": {"label|image": float(np.concatenate(log_p).mean())},
    "coherence": {"label|image": float(np.concatenate(right).mean())},
    "estimator": "exact: the mean over the test images of log softmax(logits)[true class]",
    "train_seconds": seconds,
    "mean_loss": float(history.history["loss"][-1]),
    "stopping": f"the same {steps} steps (no early stopping)",
  }


def mnist_done(out, row, record):
  """Keeps an MNIST row's record and prints its figures."""
  out["rows"][row] = record
  c, v = record["coherence"], record["values"]
  print(
    f"  {row}: coherence image|label {c.get('image|label', float('nan')):.4f}, "
    f"accuracy label|image {c['label|image']:.4f}, log p(image|label) "
    f"{v.get('image|label', float('nan')):.2f}, log p(label|image) {v['label|image']:.4f}; "
    f"trained in {record['train_seconds']:.0f} s; load {load()}",
    flush=True,
  )


# --- the experiments --------------------------------------------------------------------------
def mnist_experiment(args, steps, rows, log_loads):
  import numpy as np

  import jmvae_tf as jt
  from jmvae_tf.core import missing
  from jmvae_tf.evaluation import coherence
  from pipelines import registry

  work = os.path.join(args.work_dir, "mnist")
  os.makedirs(work, exist_ok=True)
  kinds = {"image": "image", "label": "class"}
  results = {}
  test_npz = os.path.join(work, "test.npz")
  classifiers = readers = truth = None
  for share in [float(s) for s in args.shares.split(",") if s.strip()]:
    options = [f"{missing.OPTION}=label:{share:g}"] if share else []
    data = registry.make_dataset("mnist", args.data_dir, options=options)
    n = data.num_examples("train")
    if classifiers is None:
      classifiers = coherence.data_readers(data, args.classifier_epochs, SEED)
      readers = {
        m.name: coherence.make_reader(m, classifiers, data.label_modalities())
        for m in data.modalities
      }
      truth = data.labels("test", data.check_split("test", args.num_test))
      export_test(data, kinds, len(truth), test_npz)
    hidden = missing.hidden_examples(n, share, SEED, "label")
    presence = data.presence(SEED)
    labelled = np.ones(n, bool) if presence is None else presence["label"]
    if not np.array_equal(labelled, ~hidden) or int(hidden.sum()) != round(share * n):
      raise AssertionError(f"share {share}: the data set's masks are not hidden_examples'")
    count = int(labelled.sum())
    name = f"labels on {count:,} of {n:,} ({100 * count / n:g}%)"
    print(f"\n## MNIST, {name}: {steps} steps of {BATCH} for every row", flush=True)
    if presence is not None:
      print(f"  {missing.describe(presence)}", flush=True)
    out = {"share_hidden": share, "labelled": count, "num_train": n, "rows": {}}
    results[f"label:{share:g}"] = out

    for row, record in every_example_rows(rows, data, steps, args, classifiers):
      mnist_done(out, row, {**record, "learns_from": n})
    pairs = None
    if "ours_complete" in rows or "classifier" in rows:
      pairs = jt.OwnDataSet(
        {"image": "image", "label": {"kind": "class", "classes": [str(c) for c in range(10)]}},
        train={
          "image": data.splits.train.images[labelled],
          "label": data.splits.train.labels[labelled],
        },
        test={"image": data.splits.test.images, "label": data.splits.test.labels},
        architecture="mnist_mlp",
        name="mnist_complete_pairs",
      )
      if tuple(pairs.modalities) != tuple(data.modalities):
        raise AssertionError(
          f"the complete pairs' modalities {pairs.modalities} are not MNIST's {data.modalities}"
        )
    if "ours_complete" in rows:
      model = jt.make_model("jmvae_kl", pairs, latent_dim=LATENT_DIM, seed=SEED)
      seconds, loss = train_ours(model, pairs, steps)
      record = evaluate_ours(model, data, args, classifiers)
      epochs = steps / pairs.steps_per_epoch(BATCH)
      mnist_done(
        out,
        "ours_complete",
        {
          **record,
          "train_seconds": seconds,
          "mean_loss": loss,
          "learns_from": count,
          "epochs_of_its_set": epochs,
        },
      )
    if {"mopoe", "mvae"} & set(rows):
      train_npz = os.path.join(work, f"label_{share:g}", "train.npz")
      os.makedirs(os.path.dirname(train_npz), exist_ok=True)
      absent = export_train(data, kinds, steps, train_npz, {"label": hidden})
      print(f"  exported {steps} batches for the peer (absent: {absent})", flush=True)
      for peer in ("mopoe", "mvae"):
        if peer in rows:
          peer_out = os.path.join(os.path.dirname(train_npz), f"{peer}.npz")
          record, generated = run_peer(args, peer, train_npz, test_npz, peer_out, steps)
          row = score_peer(record, generated, data, readers, truth, args.num_samples)
          mnist_done(out, peer, {**row, "learns_from": n})
    if "classifier" in rows:
      mnist_done(
        out, "classifier", {**classifier_row(pairs, data, steps, len(truth)), "learns_from": count}
      )
    log_loads[f"mnist label:{share:g}"] = load()
  read_by = {m: coherence.read_by(m_spec, classifiers) for m, m_spec in _specs(data).items()}
  return {"shares": results, "read_by": read_by, "num_test": int(len(truth))}


def _specs(data):
  return {m.name: m for m in data.modalities}


def every_example_rows(rows, data, steps, args, classifiers):
  """(row, its record) for each of our every-example rows asked for (OURS): JMVAE-kl trained on
  `data` for `steps` with that row's incomplete_weighting, then evaluated."""
  import jmvae_tf as jt

  for row, weighting in OURS:
    if row in rows:
      model = jt.make_model(
        "jmvae_kl", data, latent_dim=LATENT_DIM, seed=SEED, incomplete_weighting=weighting
      )
      seconds, loss = train_ours(model, data, steps)
      record = evaluate_ours(model, data, args, classifiers)
      yield row, {**record, "train_seconds": seconds, "mean_loss": loss}


def complete_only(data, name):
  """`data`'s training stream (data seed 0) with the examples that lack a modality left out,
  rebatched, as a PipelineDataSet of complete batches (no masks)."""
  import tensorflow as tf

  from jmvae_tf.core import missing
  from jmvae_tf.core.data import PipelineDataSet

  names = [m.name for m in data.modalities]

  def complete(example):
    masks = example[missing.PRESENT]
    return tf.reduce_all(tf.stack([masks[m] for m in names if m in masks]))

  stream = (
    data.train_dataset(BATCH, SEED)
    .unbatch()
    .filter(complete)
    .map(missing.without_masks)
    .batch(BATCH, drop_remainder=True)
  )
  return PipelineDataSet(
    data.modalities, stream, steps_per_epoch=1, architecture=data.architecture, name=name
  )


def fashion_experiment(args, steps, rows, log_loads):
  import numpy as np

  import jmvae_tf as jt
  from jmvae_tf.core import missing
  from jmvae_tf.core.data import parse_shares
  from jmvae_tf.evaluation import coherence
  from pipelines import registry

  work = os.path.join(args.work_dir, "mnist_fashion")
  os.makedirs(work, exist_ok=True)
  kinds = {"digit": "image", "fashion": "image", "label": "class"}
  items = [f"{missing.OPTION}={item.strip()}" for item in args.fashion_missing.split(",")]
  options = [f"fashion_dir={args.fashion_dir}"] + items
  data = registry.make_dataset("mnist_fashion", args.data_dir, options=options)
  n = data.num_examples("train")
  presence = data.presence(SEED)
  if presence is None:
    raise RuntimeError(
      f"mnist_fashion: --data_options={','.join(items)} hid nothing "
      "(data.presence(0) is None): the data set does not read the option"
    )
  shares = parse_shares(args.fashion_missing, [m.name for m in data.modalities], data.name)
  hidden = {m: missing.hidden_examples(n, s, SEED, m) for m, s in shares}
  for m, h in hidden.items():
    if not np.array_equal(presence[m], ~h):
      raise AssertionError(f"mnist_fashion: the data set's masks of {m} are not hidden_examples'")
  complete = int(np.logical_and.reduce(list(presence.values())).sum())
  print(
    f"\n## mnist_fashion, {args.fashion_missing}: {steps} steps of {BATCH} for every row\n"
    f"  {missing.describe(presence)}",
    flush=True,
  )
  classifiers = coherence.data_readers(data, args.classifier_epochs, SEED)
  readers = {
    m.name: coherence.make_reader(m, classifiers, data.label_modalities()) for m in data.modalities
  }
  truth = data.labels("test", data.check_split("test", args.num_test))
  out = {"missing": args.fashion_missing, "complete": complete, "num_train": n, "rows": {}}

  def done(row, record):
    out["rows"][row] = record
    print(
      f"  {row}: coherence "
      + ", ".join(f"{k} {v:.4f}" for k, v in sorted(record["coherence"].items()))
      + f"; trained in {record['train_seconds']:.0f} s; load {load()}",
      flush=True,
    )

  for row, record in every_example_rows(rows, data, steps, args, classifiers):
    done(row, {**record, "learns_from": n})
  if "ours_complete" in rows:
    triples = complete_only(data, "mnist_fashion_complete_triples")
    model = jt.make_model("jmvae_kl", triples, latent_dim=LATENT_DIM, seed=SEED)
    seconds, loss = train_ours(model, triples, steps)
    record = evaluate_ours(model, data, args, classifiers)
    done(
      "ours_complete",
      {**record, "train_seconds": seconds, "mean_loss": loss, "learns_from": complete},
    )
  if {"mopoe", "mvae"} & set(rows):
    test_npz = os.path.join(work, "test.npz")
    export_test(data, kinds, len(truth), test_npz)
    train_npz = os.path.join(work, "train.npz")
    absent = export_train(data, kinds, steps, train_npz, hidden)
    print(f"  exported {steps} batches for the peer (absent: {absent})", flush=True)
    for peer in ("mopoe", "mvae"):
      if peer in rows:
        peer_out = os.path.join(work, f"{peer}.npz")
        record, generated = run_peer(args, peer, train_npz, test_npz, peer_out, steps)
        row = score_peer(record, generated, data, readers, truth, args.num_samples)
        done(peer, {**row, "learns_from": n})
  log_loads["mnist_fashion"] = load()
  read_by = {m: coherence.read_by(spec, classifiers) for m, spec in _specs(data).items()}
  return {**out, "read_by": read_by, "num_test": int(len(truth))}


# --- tables ------------------------------------------------------------------------------------
def cell(value, digits):
  return "—" if value is None else f"{value:.{digits}f}"


def escaped(text):
  return text.replace("|", "\\|")


def mnist_tables(result, num_samples):
  lines = []
  for key, share in result["shares"].items():
    lines += [
      f"\nMNIST, labels on {share['labelled']:,} of {share['num_train']:,} training images "
      f"(missing={key if share['share_hidden'] else 'none'})\n",
      "| row | learns from | coherence image\\|label | accuracy label\\|image | "
      f"log p(image\\|label), eq 11, N = {num_samples} | log p(label\\|image), eq 11 | "
      f"MultiVae's compute_cond_nll, k = {num_samples}: image\\|label, label\\|image | "
      "training s |",
      "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row, r in share["rows"].items():
      c, v = r["coherence"], r["values"]
      own = r.get("compute_cond_nll")
      learns = f"{r['learns_from']:,}"
      if row == "ours_complete":
        learns += f" pairs ({r['epochs_of_its_set']:g} epochs of them)"
      elif row == "classifier":
        learns += " labelled images"
      else:
        learns += f" images, {share['labelled']:,} labels"
      lines.append(
        f"| {TITLES[row]} | {learns} | {cell(c.get('image|label'), 4)} | "
        f"{cell(c.get('label|image'), 4)} | {cell(v.get('image|label'), 2)} | "
        f"{cell(v.get('label|image'), 4)} | "
        + (f"{own['image|label']:.2f}, {own['label|image']:.4f}" if own else "—")
        + f" | {r['train_seconds']:.0f} |"
      )
  return "\n".join(lines)


def fashion_tables(result, num_samples):
  rows = list(result["rows"])
  keys = sorted({k for r in result["rows"].values() for k in r["coherence"]})
  header = "| target \\| given | " + " | ".join(TITLES[r] for r in rows) + " |"
  rule = "|---|" + "---:|" * len(rows)
  lines = [
    f"\nmnist_fashion, missing={result['missing']} ({result['complete']:,} of "
    f"{result['num_train']:,} training examples complete)\n",
    "Coherence (label\\|... is the accuracy of the label read from the images)\n",
    header,
    rule,
  ]
  for key in keys:
    cells = [cell(result["rows"][r]["coherence"].get(key), 4) for r in rows]
    lines.append(f"| {escaped(key)} | " + " | ".join(cells) + " |")
  lines += [f"\nlog p(target\\|given), eq 11, N = {num_samples} (MultiVae's compute_cond_nll)\n"]
  lines += [header, rule]
  for key in keys:
    cells = []
    for r in rows:
      value = result["rows"][r]["values"].get(key)
      own = (result["rows"][r].get("compute_cond_nll") or {}).get(key)
      cells.append(cell(value, 3) + (f" ({own:.3f})" if own is not None else ""))
    lines.append(f"| {escaped(key)} | " + " | ".join(cells) + " |")
  seconds = [f"{result['rows'][r]['train_seconds']:.0f}" for r in rows]
  lines.append("| training s | " + " | ".join(seconds) + " |")
  return "\n".join(lines)


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
  )
  p.add_argument("--peer_python", default=None, help="python of the venv with torch and multivae")
  p.add_argument("--data_dir", default=os.path.join(ROOT, "..", "shared", "data", "mnist"))
  p.add_argument("--fashion_dir", default="/usr/share/datasets/fashion-mnist")
  p.add_argument("--epochs", type=float, default=5.0, help="budget, in epochs of 50,000")
  p.add_argument("--steps", type=int, default=0, help="budget in optimizer steps (overrides)")
  p.add_argument("--shares", default="0.99,0.9,0", help="MNIST: shares of labels hidden")
  p.add_argument(
    "--fashion_missing",
    default="digit:0.5,fashion:0.5",
    help="mnist_fashion: modality:share[,...] hidden (each its own missing= item)",
  )
  p.add_argument("--experiments", default=",".join(EXPERIMENTS))
  p.add_argument("--rows", default=",".join(ROWS), help=f"any of {','.join(ROWS)}")
  p.add_argument("--num_test", type=int, default=10_000)
  p.add_argument("--num_samples", type=int, default=10, help="N of every log-likelihood")
  p.add_argument("--classifier_epochs", type=int, default=2, help="the coherence classifiers'")
  p.add_argument(
    "--mvae_subsampling",
    choices=("auto", "on", "off"),
    default="auto",
    help="MVAE's use_subsampling (auto: MultiVae's advice, off for incomplete data)",
  )
  p.add_argument("--peer_threads", type=int, default=2)
  p.add_argument(
    "--peer_omp_wait_policy",
    default="PASSIVE",
    help="OMP_WAIT_POLICY for the peer (stock: the environment's). PASSIVE by default: the "
    "same numbers, and no 10-30x slowdown of spinning threads on a shared machine",
  )
  p.add_argument("--peer_flush_denormal", action="store_true", help="FTZ/DAZ for the peer")
  p.add_argument("--work_dir", required=True, help="where the exported batches and outputs go")
  p.add_argument("--output", default=None, help="the JSON of every number (WORK/incomplete.json)")
  args = p.parse_args()
  rows = [r for r in args.rows.split(",") if r]
  experiments = [e for e in args.experiments.split(",") if e]
  unknown = sorted(set(rows) - set(ROWS)) + sorted(set(experiments) - set(EXPERIMENTS))
  if unknown:
    p.error(f"unknown rows or experiments: {unknown}")
  if {"mopoe", "mvae"} & set(rows) and not args.peer_python:
    p.error("the MultiVae rows need --peer_python (e.g. /work/peer-venv/bin/python)")
  os.makedirs(args.work_dir, exist_ok=True)
  output = args.output or os.path.join(args.work_dir, "incomplete.json")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  started = time.perf_counter()
  import tensorflow as tf

  # Several models in one process: tf.function's warnings that each retraces are expected.
  tf.get_logger().setLevel("ERROR")
  loads = {"start": load()}

  from jmvae_tf.training import hardware

  steps = args.steps or round(args.epochs * 50_000 / BATCH)
  cpu = hardware.describe_cpu().describe()
  print(f"CPU: {cpu}\nload at the start: {loads['start']}", flush=True)
  print(
    f"budget: {steps} steps of {BATCH} ({steps * BATCH / 50_000:g} epochs of 50,000) for every "
    f"row; latent {LATENT_DIM}, Adam {LEARNING_RATE:g}, no warm-up, seed {SEED}; "
    f"{args.num_test} test examples, N = {args.num_samples}",
    flush=True,
  )
  results, failed = {}, []
  run_one = {"mnist": mnist_experiment, "mnist_fashion": fashion_experiment}
  for name in experiments:
    try:
      results[name] = run_one[name](args, steps, rows, loads)
    except Exception as error:  # pylint: disable=broad-except  (the others still run)
      traceback.print_exc()
      results[name] = {"error": f"{type(error).__name__}: {error}"}
      failed.append(name)
  loads["end"] = load()
  seconds = time.perf_counter() - started

  print(f"\nCPU: {cpu}")
  print("load (uptime: 1, 5, 15 min): " + "; ".join(f"{k} {v}" for k, v in loads.items()))
  print(
    f"budget: {steps} steps of {BATCH} for every row; {args.num_test} test examples; "
    f"N = {args.num_samples}; wall time {seconds:.0f} s"
  )
  if "mnist" in results and "error" not in results["mnist"]:
    print(mnist_tables(results["mnist"], args.num_samples))
    print("\nread by: " + "; ".join(f"{k}: {v}" for k, v in results["mnist"]["read_by"].items()))
  if "mnist_fashion" in results and "error" not in results["mnist_fashion"]:
    print(fashion_tables(results["mnist_fashion"], args.num_samples))
    reads = results["mnist_fashion"]["read_by"]
    print("\nread by: " + "; ".join(f"{k}: {v}" for k, v in reads.items()))
  for name in failed:
    print(f"\n{name}: FAILED, {results[name]['error']}")
  with open(output, "w") as f:
    json.dump(
      {
        "cpu": cpu,
        "load": loads,
        "settings": {
          "steps": steps,
          "batch_size": BATCH,
          "latent_dim": LATENT_DIM,
          "learning_rate": LEARNING_RATE,
          "warmup_epochs": 0,
          "seed": SEED,
          "num_test": args.num_test,
          "num_samples": args.num_samples,
          "rows": rows,
          "mvae_subsampling": args.mvae_subsampling,
          "peer_threads": args.peer_threads,
          "peer_omp_wait_policy": args.peer_omp_wait_policy,
          "peer_flush_denormal": args.peer_flush_denormal,
        },
        "seconds": seconds,
        **results,
      },
      f,
      indent=2,
    )
  print(f"\nwrote {output}")
  if failed:
    sys.exit(1)


if __name__ == "__main__":
  main()
