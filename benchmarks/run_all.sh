#!/usr/bin/env bash
# Every speed figure of README.md ("Speed") and benchmarks/README.md, in one sitting on a
# quiet machine (about 25 minutes on the project's 2-core Xeon), CPU model and flags first.
#
#   benchmarks/run_all.sh [OUT_DIR]        (default OUT_DIR: /tmp/jmvae_tf_benchmarks)
#
# Environment: PYTHON (default .venv/bin/python), PEER_PYTHON (default
# /work/peer-venv/bin/python; the MultiVae venv of benchmarks/README.md), MNIST_DIR
# (default ../shared/data/mnist), FACES_DIR (default /work/cmp/faces: a folder in CelebA's
# layout), ROUNDS (default 3), STEPS (default "1 2 3 4 5 6 7 8": the steps to run; step 6
# reads the training rates from the logs of steps 1 and 5 in OUT_DIR), QUICK=1 (a smoke
# test of this script: tiny runs whose figures mean nothing; ~20 min on a busy machine).
# Each step's full output goes to OUT_DIR/<step>.log; the RESULT lines and the tables are
# printed here. Run nothing else meanwhile: the figures are medians of interleaved rounds,
# but a busy machine still moves them (MultiVae's PyTorch threads most of all).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/jmvae_tf_benchmarks}
PYTHON=${PYTHON:-.venv/bin/python}
PEER_PYTHON=${PEER_PYTHON:-/work/peer-venv/bin/python}
MNIST_DIR=${MNIST_DIR:-../shared/data/mnist}
FACES_DIR=${FACES_DIR:-/work/cmp/faces}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-1 2 3 4 5 6 7 8}
TT_QUICK=() PIPE_QUICK=()
if [[ ${QUICK:-0} == 1 ]]; then
  ROUNDS=1
  TT_QUICK=(--rounds=1 --num_train=1000 --epochs=2 --peer_steps=10 --peer_warmup_steps=3
    "--bare_flags=--steps_per_window=20 --windows=1 --steps_per_call=10")
  PIPE_QUICK=(--mnist_batches=50 --celeba_batches=3 --windows=1 --warmup_batches=2)
fi
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=2
started=$(date +%s)

tt() { "$PYTHON" benchmarks/train_throughput.py "$@" "${TT_QUICK[@]}"; }
pipelines() { "$PYTHON" benchmarks/input_pipeline.py "$@" "${PIPE_QUICK[@]}"; }

step() {  # step NUMBER NAME COMMAND...: runs it (if NUMBER is in $STEPS), keeps its log,
  local number=$1 name=$2  # prints its summary lines
  shift 2
  [[ " $STEPS " == *" $number "* ]] || return 0
  echo
  echo "== $name ($(date -u +%H:%M:%S) UTC): $*"
  "$@" >"$OUT/$name.log" 2>&1 || { echo "FAILED, see $OUT/$name.log"; tail -5 "$OUT/$name.log"; }
  grep -E '^(RESULT|CPU|\||jmvae|[a-z_]+: (runners|this CPU|2.5x)|round|intra|speed settings| *[0-9.]+ +[0-9.]+  | wall s)' \
    "$OUT/$name.log" || true
}

echo "== machine"
grep -m1 'model name' /proc/cpuinfo || true
echo "cores usable: $(nproc)"
grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_bf16|amx_bf16|amx_tile)$' | tr '\n' ' '
echo
"$PYTHON" -c 'from jmvae_tf.training import hardware as h; c = h.describe_cpu(); print("CPU:", c.describe()); print("defaults without a GPU:", h.decide(c, 0).summary())'
"$PYTHON" -c 'import tensorflow as tf; print("tensorflow", tf.__version__)' 2>/dev/null
"$PEER_PYTHON" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null || echo "no peer venv at $PEER_PYTHON"

# 1. JMVAE-kl MNIST, default flags (float32): against MultiVae (its first 300 steps after 30
#    of warm-up) and against the bare step (with and without XLA), interleaved. ~7 min.
step 1 jmvae_kl_vs_peer_and_bare tt --data_dir="$MNIST_DIR" \
  --models=jmvae_kl --rounds="$ROUNDS" --bare --bare_jit=both \
  --bare_flags="--steps_per_window=300 --windows=3" --peer_python="$PEER_PYTHON"

# 2. The peer past step 1,000 (where stock PyTorch may slow down: subnormal Adam state on
#    some CPUs), against ours again. 2 rounds, ~3 min.
step 2 jmvae_kl_vs_peer_steady tt --data_dir="$MNIST_DIR" \
  --models=jmvae_kl --rounds=2 --peer_python="$PEER_PYTHON" --peer_warmup_steps=1000

# 3. The speed options on this CPU, interleaved with the default: TF's default threads, XLA,
#    bfloat16 (hidden layers), no steps_per_execution, tf.data's own autotuned pool. 2 rounds,
#    20,000 images an epoch. ~5 min.
step 3 jmvae_kl_options tt --data_dir="$MNIST_DIR" \
  --models=jmvae_kl --rounds=2 --num_train=20000 \
  --variants=";--intra_op_threads=0;--jit_compile=true;--precision=mixed_bfloat16;--steps_per_execution=1;--input_threads=0"

# 4. The other four models against their bare steps (XLA off: slower on this CPU in step 1;
#    rerun with --bare_jit=both on a CPU where it is not). 2 rounds, 20,000 images. ~5 min.
step 4 other_models_vs_bare tt --data_dir="$MNIST_DIR" \
  --models=jmvae,hierarchical_jmvae,cvae,cmma --rounds=2 --num_train=20000 --bare \
  --bare_jit=false --bare_flags="--steps_per_window=300 --windows=3"

# 5. CelebA networks (configs/celeba_<model>.flags: the paper's, batch 100) on the faces
#    folder: examples/s, peak memory, start-up. 1 round, 2 epochs of 18 steps (the second
#    timed). ~6 min.
step 5 celeba_networks tt --family=celeba \
  --data_dir="$FACES_DIR" --rounds=1 --epochs=2

# 6. The input pipelines alone, against the training rates measured above.
mnist_rate=$(grep -h 'RESULT train family=mnist model=jmvae_kl variant=- ' \
  "$OUT/jmvae_kl_vs_peer_and_bare.log" 2>/dev/null | head -1 | sed 's/.*examples_per_sec=//' || true)
celeba_rate=$(grep -h 'RESULT train family=celeba model=jmvae_kl ' "$OUT/celeba_networks.log" \
  2>/dev/null | head -1 | sed 's/.*examples_per_sec=//' || true)
step 6 input_pipelines pipelines --mnist_dir="$MNIST_DIR" \
  --celeba_dir="$FACES_DIR" ${mnist_rate:+--train_mnist=$mnist_rate} \
  ${celeba_rate:+--train_celeba=$celeba_rate}

# 7. Where the start-up goes (the command to the first steady step).
step 7 startup "$PYTHON" benchmarks/startup.py --flagfile=configs/mnist_jmvae_kl.flags \
  --data_dir="$MNIST_DIR"

# 8. Where a steady epoch's time goes: a TF profiler trace of epoch 2 (200 steps).
prof_train=20000
[[ ${QUICK:-0} == 1 ]] && prof_train=1000
step 8 profile "$PYTHON" benchmarks/profile_train.py --logdir="$OUT/profile" --top=12 -- \
  --flagfile=configs/mnist_jmvae_kl.flags --data_dir="$MNIST_DIR" --num_train=$prof_train
[[ " $STEPS " == *" 8 "* ]] && sed -n '/^wall/,/^largest/p' "$OUT/profile.log"

echo
echo "== done in $(( $(date +%s) - started )) s; logs in $OUT"
