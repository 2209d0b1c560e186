r"""The in-house yardstick: a bare single-device `tf.function` training step.

The same model that `runners.train` builds from a flagfile (same networks, same
objective: the model's own `loss_terms`), trained by one `tf.function` that does
everything a step needs and nothing else: gather a batch from the images held in
memory (uniform indices), binarise it stochastically, forward, backward and Adam
(the paper's settings): hand-written element-wise ops under XLA (one fusion), TF's
fused ResourceApplyAdam kernel without (`--adam` to choose). No Keras `fit`, no
distribution strategy, no metrics, no tf.data, no callbacks. `--steps_per_call`
steps run in one call (a `tf.while_loop`), as `--steps_per_execution` does for the
runner.

  python benchmarks/bare_step.py --models=jmvae_kl --jit_compile=both

prints one line per (model, jit) with the median examples/s over `--windows` timed windows
(`--jit_compile=both`: each in its own process, since the default threads differ with XLA,
each process with its own LIMIT lines), and one LIMIT line per model: what this CPU could
do at best, from two figures measured here before and after the timing, the better of each
kept (numpy's float32 matmul rate and memory copy rate), and the model's size (per example
6 FLOPs per kernel weight: forward 2, input gradient 2, weight gradient 2; 4 for the
layers that read data, whose input gradient TensorFlow never computes; Adam reads 4 and
writes 3 float32 per parameter per step), so a rate can be read as a share of the machine.
`train_throughput.py --bare` runs it interleaved with `runners.train` and prints
runners.train / bare step, and both as shares of that limit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
MODELS = ("jmvae", "jmvae_kl", "hierarchical_jmvae", "cvae", "cmma")


def model_config(model: str, data, latent_dim=None):
  """The ModelConfig runners.train builds from configs/mnist_<model>.flags."""
  from absl import flags

  from runners import train as train_runner

  fv = flags.FlagValues()
  train_runner.define_flags(fv)
  flagfile = os.path.join(ROOT, "configs", f"mnist_{model}.flags")
  fv([sys.argv[0], f"--flagfile={flagfile}", "--model_dir=unused"])
  if latent_dim:
    fv.latent_dim = latent_dim
  return train_runner.model_config_from_flags(data, fv)


def make_step(
  model, images, labels, batch_size, steps_per_call, jit_compile, fused_adam, lr=1e-3, eps=1e-7
):
  """One tf.function running `steps_per_call` complete training steps."""
  import tensorflow as tf

  from jmvae_tf.models.base import LOSS

  variables = model.trainable_variables
  m_slots = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
  v_slots = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
  step_counter = tf.Variable(0, dtype=tf.int64, trainable=False)
  num_examples = int(images.shape[0])
  beta1, beta2 = 0.9, 0.999

  def one_step(i):
    step = step_counter + 1
    seed = tf.stack([tf.constant(7, tf.int64), step])
    index_seed, bits_seed, model_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    indices = tf.random.stateless_uniform(
      [batch_size], index_seed, minval=0, maxval=num_examples, dtype=tf.int32
    )
    intensities = tf.cast(tf.gather(images, indices), tf.float32) / 255.0
    noise = tf.random.stateless_uniform(tf.shape(intensities), bits_seed)
    batch = {
      "image": tf.cast(noise < intensities, tf.float32)[..., tf.newaxis],
      "label": tf.one_hot(tf.gather(labels, indices), 10),
    }
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(model.loss_terms(batch, model_seed, training=True)[LOSS])
    gradients = tape.gradient(loss, variables)
    t = tf.cast(step, tf.float32)
    lr_t = lr * tf.sqrt(1.0 - tf.pow(beta2, t)) / (1.0 - tf.pow(beta1, t))
    for var, g, m, v in zip(variables, gradients, m_slots, v_slots):
      if fused_adam:  # TF's one-pass kernel, what the runner's legacy Keras Adam calls
        tf.raw_ops.ResourceApplyAdam(
          var=var.handle,
          m=m.handle,
          v=v.handle,
          beta1_power=tf.pow(beta1, t),
          beta2_power=tf.pow(beta2, t),
          lr=tf.constant(lr),
          beta1=tf.constant(beta1),
          beta2=tf.constant(beta2),
          epsilon=tf.constant(eps),
          grad=g,
        )
      else:
        m.assign(beta1 * m + (1.0 - beta1) * g)
        v.assign(beta2 * v + (1.0 - beta2) * tf.square(g))
        var.assign_sub(lr_t * m / (tf.sqrt(v) + eps))
    step_counter.assign(step)
    return i + 1

  @tf.function(jit_compile=jit_compile)
  def run_steps():
    tf.while_loop(lambda i: i < steps_per_call, one_step, [tf.constant(0)])
    return step_counter.read_value()

  return run_steps


def machine_rates(repeats: int = 10):
  """(float32 matmul GFLOP/s, copy GB/s counting bytes read and written), measured with
  numpy on every usable core: a 2048^3 product, and a 50 MB copy (Adam's working set for
  JMVAE-kl) split over one thread per core (numpy releases the GIL). Each is the fastest
  of `repeats` after a warm-up: a limit takes the machine at its best."""
  import concurrent.futures

  import numpy as np

  from jmvae_tf.training import hardware

  rng = np.random.default_rng(0)
  a, b = (rng.random((2048, 2048), dtype=np.float32) for _ in range(2))
  a @ b
  times = []
  for _ in range(repeats):
    started = time.perf_counter()
    a @ b
    times.append(time.perf_counter() - started)
  gflops = 2 * 2048**3 / min(times) / 1e9
  cores = hardware.usable_cores()
  src = rng.random(12_500_000, dtype=np.float32)
  dst = np.empty_like(src)
  parts = np.array_split(np.arange(src.size), cores)
  bounds = [(int(p[0]), int(p[-1]) + 1) for p in parts]
  with concurrent.futures.ThreadPoolExecutor(cores) as pool:

    def copy():
      list(pool.map(lambda lo_hi: np.copyto(dst[slice(*lo_hi)], src[slice(*lo_hi)]), bounds))

    copy()
    times = []
    for _ in range(repeats):
      started = time.perf_counter()
      copy()
      times.append(time.perf_counter() - started)
  return gflops, 2 * src.nbytes / min(times) / 1e9


def limit_line(model_name, model, batch_size, gflops, copy_gbs):
  """The LIMIT line: the best this CPU could do for `model` (see the module docstring)."""
  import numpy as np

  weights = sum(v.shape.num_elements() for v in model.trainable_variables)
  kernels = [v for v in model.trainable_variables if v.shape.rank == 2]
  # A layer reads data when its fan-in is a modality's size (784 or 10 here; the hidden,
  # latent and concatenated widths differ): no gradient flows to its input.
  data_sizes = {int(np.prod(m.shape)) for m in model.modality_specs}
  reads_data = sum(v.shape.num_elements() for v in kernels if v.shape[0] in data_sizes)
  flops = 6 * sum(v.shape.num_elements() for v in kernels) - 2 * reads_data
  matmul_s = flops / (gflops * 1e9)  # per example
  adam_s = 28 * weights / (copy_gbs * 1e9) / batch_size  # per example, at this batch
  return (
    f"LIMIT bare_step model={model_name} matmul_gflops={gflops:.0f} copy_gbs={copy_gbs:.1f} "
    f"mflop_per_example={flops / 1e6:.1f} adam_mb_per_step={28 * weights / 1e6:.1f} "
    f"matmul_only={1 / matmul_s:.0f} matmul_then_adam={1 / (matmul_s + adam_s):.0f}"
  )


def measure(model_name, jit_compile, args, data):
  import tensorflow as tf

  from jmvae_tf.models import config as config_lib

  tf.random.set_seed(0)  # the same initial weights every run
  config = model_config(model_name, data)
  model = config_lib.build_model(config)
  train = data.splits.train
  images = tf.constant(train.images)
  labels = tf.constant(train.labels.astype("int32"))
  fused_adam = {"fused": True, "hand": False, "auto": not jit_compile}[args.adam]
  run_steps = make_step(
    model,
    images,
    labels,
    args.batch_size,
    args.steps_per_call,
    jit_compile,
    fused_adam,
    args.learning_rate,
  )
  started = time.perf_counter()
  run_steps().numpy()  # trace, compile, first steps
  first_call = time.perf_counter() - started
  calls = max(1, args.steps_per_window // args.steps_per_call)
  rates = []
  for _ in range(args.windows):
    started = time.perf_counter()
    for _ in range(calls):
      run_steps()
    run_steps().numpy()  # waits for the last call
    elapsed = time.perf_counter() - started
    rates.append((calls + 1) * args.steps_per_call * args.batch_size / elapsed)
  return statistics.median(rates), rates, first_call, fused_adam, model


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
  )
  p.add_argument(
    "--data_dir",
    default=os.path.join(ROOT, "..", "shared", "data", "mnist"),
    help="directory of the MNIST IDX files",
  )
  p.add_argument("--models", default="jmvae_kl", help="comma-separated, or 'all'")
  p.add_argument("--jit_compile", default="both", choices=["true", "false", "both"])
  p.add_argument(
    "--adam",
    default="auto",
    choices=["auto", "hand", "fused"],
    help="hand: element-wise ops (one XLA fusion under jit); fused: TF's ResourceApplyAdam "
    "kernel; auto: fused without XLA, hand-written with XLA (the faster of each)",
  )
  p.add_argument("--batch_size", type=int, default=100)
  p.add_argument("--learning_rate", type=float, default=1e-3)
  p.add_argument("--num_train", type=int, default=50000)
  p.add_argument("--steps_per_call", type=int, default=50)
  p.add_argument("--steps_per_window", type=int, default=500)
  p.add_argument("--windows", type=int, default=3)
  p.add_argument(
    "--intra_op_threads",
    type=int,
    default=-1,
    help="TF intra-op threads; -1: the machine's default for the --jit_compile used, as "
    "runners.train (0: TF's default)",
  )
  p.add_argument("--inter_op_threads", type=int, default=0)
  args = p.parse_args()
  models = MODELS if args.models == "all" else tuple(m for m in args.models.split(",") if m)
  for m in models:
    if m not in MODELS:
      p.error(f"--models: unknown model {m!r}; choose from {MODELS}")
  if not os.path.isdir(args.data_dir):
    p.error(f"--data_dir={args.data_dir} is not a directory")

  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if args.jit_compile == "both":
    # Each in its own process: TF's threads are set once, and the auto setting differs
    # with XLA (hardware.decide).
    argv, others = list(sys.argv[1:]), []
    while argv:  # everything but --jit_compile=both / --jit_compile both
      arg = argv.pop(0)
      if arg == "--jit_compile":
        argv.pop(0)
      elif not arg.startswith("--jit_compile="):
        others.append(arg)
    for jit in ("false", "true"):
      subprocess.run([sys.executable, __file__, f"--jit_compile={jit}", *others], check=True)
    return

  from jmvae_tf.training import runtime
  from pipelines import mnist

  jit = args.jit_compile == "true"
  threads, _ = runtime.configure_cpu_threads(args.intra_op_threads, args.inter_op_threads, jit)
  print(f"intra-op threads: {threads or 'TF default'}", flush=True)
  data = mnist.MnistDataSet(args.data_dir, num_train=args.num_train)
  jits = (jit,)
  before = machine_rates()
  measured = []
  for m in models:
    for jit in jits:
      median, rates, first, fused, model = measure(m, jit, args, data)
      print(
        f"RESULT bare_step model={m} jit_compile={str(jit).lower()} "
        f"adam={'fused' if fused else 'hand'} "
        f"examples_per_sec={median:.1f} windows={'/'.join(f'{r:.0f}' for r in rates)} "
        f"first_call_s={first:.1f}",
        flush=True,
      )
    measured.append((m, model))
  # The machine's rates drift with its neighbours' load: the best of before and after.
  after = machine_rates()
  gflops, copy_gbs = max(before[0], after[0]), max(before[1], after[1])
  for m, model in measured:
    print(limit_line(m, model, args.batch_size, gflops, copy_gbs), flush=True)


if __name__ == "__main__":
  main()
