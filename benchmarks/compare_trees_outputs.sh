#!/usr/bin/env bash
# Old against new, bit for bit: the same runners.train commands in two checkouts of this project
# (every model of Table 1, the synthetic faces' models of Table 2 with the VAE-GAN, and the
# three-modality mnist_fashion), every checkpoint tensor compared; then the same
# runners.evaluate commands, compared number by number: old runs by the old runner against new
# runs by the new, and old runs by the old runner against the same old runs by the new.
#
#   git worktree add /tmp/old <commit>
#   bash benchmarks/compare_trees_outputs.sh /tmp/old ../shared/data/mnist [/tmp/compare_outputs]
#
# About 15 minutes on 2 cores; TensorFlow's messages go to OUT/*.log. Small runs (2,000 images,
# 2 epochs, latent_dim 8): the point is the equality, not the figures. The VAE-GAN runs with
# XLA: without it its CPU training is not reproducible run to run (in either checkout; its first
# difference, 1e-10 in the discriminator's first convolution's bias after one step, is a
# kernel's summation order), so two runs of one checkout would differ too. Fashion-MNIST comes
# from /usr/share/datasets/fashion-mnist (the dataset-fashion-mnist package; FASHION_DIR=...).
set -euo pipefail
OLD=$(cd "${1:?the old checkout}" && pwd)
MNIST=$(cd "${2:?the MNIST IDX directory}" && pwd)
OUT=${3:-/tmp/compare_outputs}
NEW=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
FASHION=${FASHION_DIR:-/usr/share/datasets/fashion-mnist}
rm -rf "$OUT"
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=3 JMVAE_TF_CACHE_DIR=$OUT/cache
(cd "$NEW" && $PY -m runners.synthetic_faces --output_dir="$OUT/faces" --num_images=300 >/dev/null)

MNIST_RUN="--data_dir=$MNIST --num_train=2000 --epochs=2 --warmup_epochs=1 --latent_dim=8 --eval_every=1 --verbose=0"
FACES_RUN="--data_dir=$OUT/faces --warmup_epochs=1 --batch_size=20 --latent_dim=8 --verbose=0"
declare -A RUNS=(
  [jmvae]="--flagfile=configs/mnist_jmvae.flags $MNIST_RUN"
  [jmvae_kl]="--flagfile=configs/mnist_jmvae_kl.flags $MNIST_RUN"
  [hierarchical_jmvae]="--flagfile=configs/mnist_hierarchical_jmvae.flags $MNIST_RUN"
  [cvae]="--flagfile=configs/mnist_cvae.flags $MNIST_RUN"
  [cvae_label]="--flagfile=configs/mnist_cvae_label_given_image.flags $MNIST_RUN"
  [cmma]="--flagfile=configs/mnist_cmma.flags $MNIST_RUN"
  [cmma_label]="--flagfile=configs/mnist_cmma_label_given_image.flags $MNIST_RUN"
  [faces_jmvae_kl]="--flagfile=configs/synthetic_faces_jmvae_kl.flags $FACES_RUN --epochs=2 --eval_every=1"
  [faces_jmvae]="--flagfile=configs/synthetic_faces_jmvae.flags $FACES_RUN --epochs=1"
  [faces_gan]="--flagfile=configs/synthetic_faces_jmvae_kl_gan.flags $FACES_RUN --epochs=2 --eval_every=1 --jit_compile=true"
  [fashion_jmvae_kl]="--flagfile=configs/mnist_fashion_jmvae_kl.flags --data_options=fashion_dir=$FASHION $MNIST_RUN"
)
tree() { if [ "$1" = old ]; then echo "$OLD"; else echo "$NEW"; fi; }

for name in jmvae jmvae_kl hierarchical_jmvae cvae cvae_label cmma cmma_label faces_jmvae_kl faces_jmvae faces_gan fashion_jmvae_kl; do
  for side in old new; do
    (cd "$(tree $side)" && $PY -m runners.train ${RUNS[$name]} --model_dir="$OUT/$side/$name" \
      >"$OUT/$side-$name.train.log" 2>&1) || { echo "training failed: $side $name ($OUT/$side-$name.train.log)"; exit 1; }
  done
  $PY - "$OUT/old/$name/ckpt" "$OUT/new/$name/ckpt" "$name" 2>>"$OUT/checks.log" <<'PY' || { echo "see $OUT/checks.log"; exit 1; }
import sys
import numpy as np
import tensorflow as tf
old, new = (tf.train.load_checkpoint(tf.train.latest_checkpoint(p)) for p in sys.argv[1:3])
keys = set(old.get_variable_to_shape_map())
if keys != set(new.get_variable_to_shape_map()):
  sys.exit(f"{sys.argv[3]}: the checkpoints hold different tensors")
differ = [k for k in sorted(keys) if not np.array_equal(old.get_tensor(k), new.get_tensor(k))]
print(f"{sys.argv[3]} checkpoint: {len(keys)} tensors, {len(differ)} differ {differ[:3]}")
PY
done

# runs: whose model dirs; tree: whose runner evaluates them.
for case in old:old new:new old:new; do
  runs=${case%:*}
  side=${case#*:}
  out=$OUT/eval-$runs-runs-$side-runner
  d=$OUT/$runs
  cd "$(tree $side)"
  $PY -m runners.evaluate --model_dirs=$d/jmvae,$d/jmvae_kl,$d/hierarchical_jmvae,$d/cvae,$d/cvae_label,$d/cmma,$d/cmma_label \
    --data_dir="$MNIST" --num_test=500 --iterations=10 --num_samples=5 --iwae_samples=10 --noprogress \
    --output_dir="$out/table1" >"$out.table1.log" 2>&1 || { echo "evaluation failed: $out.table1.log"; exit 1; }
  $PY -m runners.evaluate --model_dirs=$d/faces_jmvae_kl,$d/faces_jmvae,$d/faces_gan --dataset=celeb_a \
    --data_dir="$OUT/faces" --num_test=30 --iterations=5 --num_samples=3 --noprogress \
    --output_dir="$out/table2" >"$out.table2.log" 2>&1 || { echo "evaluation failed: $out.table2.log"; exit 1; }
  $PY -m runners.evaluate --model_dir=$d/fashion_jmvae_kl --data_dir="$MNIST" --num_test=300 \
    --iterations=5 --num_samples=3 --noprogress \
    --output_dir="$out/fashion" >"$out.fashion.log" 2>&1 || { echo "evaluation failed: $out.fashion.log"; exit 1; }
done

$PY - "$OUT" 2>>"$OUT/checks.log" <<'PY' || { echo "see $OUT/checks.log"; exit 1; }
import json
import sys
out = sys.argv[1]
KEEP = ("values", "iwae", "attribute_accuracy", "coherence", "estimator", "num_examples")

def numbers(case, path):
  records = json.load(open(f"{out}/eval-{case}/{path}"))
  return [{k: r.get(k) for k in KEEP} for r in (records if isinstance(records, list) else [records])]

for name, path in (
  ("Table 1", "table1/table1.json"),
  ("Table 2 (synthetic faces)", "table2/table2.json"),
  ("K=3 mnist_fashion", "fashion/evaluation.json"),
):
  old = numbers("old-runs-old-runner", path)
  new = numbers("new-runs-new-runner", path)
  cross = numbers("old-runs-new-runner", path)
  cells = sum(len(r["values"]) + len(r["iwae"] or {}) for r in old)
  print(
    f"{name} ({len(old)} rows, {cells} log-likelihood cells, with the coherence): "
    f"old runs and runner vs new: {'identical' if old == new else 'DIFFERENT'}; "
    f"old runs, old runner vs new runner: {'identical' if old == cross else 'DIFFERENT'}"
  )
PY
