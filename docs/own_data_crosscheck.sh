#!/usr/bin/env bash
# docs/OWN_DATA.md's cross-check: Fashion-MNIST trained from its IDX files (--dataset=fashion_mnist)
# and from a folder of PNGs and a CSV (--dataset=files, docs/write_fashion_as_files.py), with the
# same networks (--architecture=mnist_mlp), seeds and flags; every checkpoint tensor compared;
# then both evaluated with three test-binarisation seeds each.
#
#   bash docs/own_data_crosscheck.sh /usr/share/datasets/fashion-mnist /tmp/own [EPOCHS]
#
# About 15 minutes on 2 cores for 20 epochs. TensorFlow's messages go to OUT/*.log.
set -euo pipefail
IDX=$(cd "${1:?the Fashion-MNIST IDX directory}" && pwd)
OUT=${2:-/tmp/own}
EPOCHS=${3:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
export TF_CPP_MIN_LOG_LEVEL=3 JMVAE_TF_CACHE_DIR=$OUT/cache
cd "$ROOT"
mkdir -p "$OUT"
[ -f "$OUT/fashion/dataset.json" ] || $PY docs/write_fashion_as_files.py --idx_dir="$IDX" --output_dir="$OUT/fashion"
COMMON="--model=jmvae_kl --architecture=mnist_mlp --num_train=50000 --epochs=$EPOCHS --verbose=2"
declare -A DATA=(
  [idx]="--dataset=fashion_mnist --data_dir=$IDX"
  [files]="--dataset=files --data_dir=$OUT/fashion"
)
for side in idx files; do
  rm -rf "$OUT/run_$side"
  start=$(date +%s)
  $PY -m runners.train ${DATA[$side]} $COMMON --model_dir="$OUT/run_$side" >"$OUT/train_$side.log" 2>&1 \
    || { echo "training failed: $OUT/train_$side.log"; exit 1; }
  echo "trained $side in $(( $(date +%s) - start )) s"
done
$PY - "$OUT/run_idx/ckpt" "$OUT/run_files/ckpt" <<'PY'
import sys, numpy as np, tensorflow as tf
a, b = (tf.train.latest_checkpoint(d) for d in sys.argv[1:3])
names = [n for n, _ in tf.train.list_variables(a)]
assert names == [n for n, _ in tf.train.list_variables(b)], "different variables"
ra, rb = tf.train.load_checkpoint(a), tf.train.load_checkpoint(b)
differ = [n for n in names if not np.array_equal(ra.get_tensor(n), rb.get_tensor(n))]
# The metric trackers hold the last held-out evaluation's sums, whose bits differ by design.
trackers = [n for n in names if "/trackers/" in n]
# The run's config the checkpoint carries names its data set (files vs fashion_mnist).
weights = [n for n in names if n not in trackers and not n.startswith("run_config/")]
print(f"checkpoints: {sum(n not in differ for n in weights)} of {len(weights)} weight and "
      f"optimizer tensors equal bit for bit; {sum(n in differ for n in trackers)} of "
      f"{len(trackers)} metric trackers differ (the last held-out evaluation's sums)")
assert not set(differ) & set(weights), [n for n in differ if n in weights]
PY
for side in idx files; do
  for seed in 0 1 2; do
    $PY -m runners.evaluate ${DATA[$side]} --model_dir="$OUT/run_$side" --data_seed=$seed \
      --output_dir="$OUT/eval_${side}_$seed" --noprogress >"$OUT/eval_${side}_$seed.log" 2>&1 \
      || { echo "evaluation failed: $OUT/eval_${side}_$seed.log"; exit 1; }
  done
done
$PY - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
records = {}
for side in ("idx", "files"):
  for seed in (0, 1, 2):
    with open(os.path.join(out, f"eval_{side}_{seed}", "evaluation.json")) as f:
      records[side, seed] = json.load(f)
keys = list(records["idx", 0]["values"]) + [f"coherence {k}" for k in records["idx", 0]["coherence"]["pairs"]]
def value(r, k):
  return r["coherence"]["pairs"][k[10:]] if k.startswith("coherence ") else r["values"][k]
print("| quantity | " + " | ".join(f"{s} seed {d}" for s, d in records) + " |")
print("|---" * (1 + len(records)) + "|")
for k in keys:
  print(f"| {k} | " + " | ".join(f"{value(r, k):.4f}" for r in records.values()) + " |")
PY

