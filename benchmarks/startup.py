r"""Where the start-up of `runners.train` goes: the runner's steps, timed one by one.

Does what `runners.train` does before its first training step, in the same order,
and prints the seconds of each phase: Python imports (TensorFlow, TFP, tf-keras, the
project), reading the data, the probe batch, building the model and the first call
of Keras' train function (tracing, plus its first `steps_per_execution` steps).

  python benchmarks/startup.py --flagfile=configs/mnist_jmvae_kl.flags

Flags are runners.train's (--model_dir is not needed: nothing is written), and
--optimizer_state=first_step, which leaves Adam's state to the first step as
`runners.train` did before (its variables, made inside the first trace, make tf.function
trace the training function again), to compare. The last line gives how many times the
training function was traced.
"""

from __future__ import annotations

import os
import sys
import time

STARTED = time.perf_counter(), time.process_time()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
  phases = []  # (name, wall seconds, CPU seconds of this process)
  mark = [STARTED]

  def done(name):
    now = time.perf_counter(), time.process_time()
    phases.append((name, now[0] - mark[0][0], now[1] - mark[0][1]))
    mark[0] = now

  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  from absl import flags

  from runners import flagutil
  from runners import train as train_runner

  done("python, absl, the runner module")
  fv = flags.FLAGS
  train_runner.define_flags(fv)
  flags.DEFINE_enum(
    "optimizer_state",
    "before",
    ["before", "first_step"],
    "before: made after compile, as driver.train does; first_step: left to the first step.",
  )
  argv = sys.argv + ["--model_dir=unused"]  # required by the flags; nothing is written
  # parse_or_exit imports TensorFlow, TFP and tf-keras (quietly: flagutil.quiet_tensorflow).
  flagutil.parse_or_exit(argv)
  import tensorflow as tf

  done("parse the flags; import tensorflow, tensorflow_probability, tf_keras")
  from jmvae_tf.models import config
  from jmvae_tf.training import driver, runtime
  from pipelines import registry

  done("import jmvae_tf, pipelines")
  jit_compile = runtime.resolve_jit_compile(fv.jit_compile, fv.strategy)
  runtime.configure_cpu_threads(fv.intra_op_threads, fv.inter_op_threads, jit_compile)
  train_config = train_runner.train_config_from_flags(fv)
  data = registry.make_dataset(fv.dataset, fv.data_dir, fv.num_train, fv.validation)
  done(f"read the data ({fv.dataset})")
  held_out = data.held_out_split()
  probe = next(iter(data.eval_dataset(held_out, 1000, seed=0, num_examples=1000)))
  done("probe batch (1,000 held-out examples)")
  model_config = train_runner.model_config_from_flags(data, fv)
  strategy = runtime.make_strategy(train_config.run.strategy)
  with strategy.scope():
    with runtime.precision_policy(train_config.fixed.precision):
      model = config.build_model(model_config)
    model.compile(
      optimizer=driver.make_optimizer(train_config),
      jit_compile=jit_compile,
      steps_per_execution=train_config.run.steps_per_execution,
    )
    if fv.optimizer_state == "before":
      model.build_optimizer_state()  # as driver.train does
  done("build and compile the model")
  dataset = runtime.with_input_threads(
    data.train_dataset(train_config.fixed.batch_size, 0, 0), runtime.input_threads(fv.input_threads)
  )
  model.fit(dataset, epochs=1, steps_per_epoch=train_config.run.steps_per_execution, verbose=0)
  done(f"first fit call: tracing + {train_config.run.steps_per_execution} steps")
  started = time.perf_counter()
  model.fit(dataset, epochs=1, steps_per_epoch=train_config.run.steps_per_execution, verbose=0)
  steady = time.perf_counter() - started
  del probe, tf
  print(f"{'wall s':>7}  {'CPU s':>6}  phase (CPU: this process, all threads; on a busy machine")
  print(
    "                 the CPU seconds of the single-threaded phases are what a quiet one takes)"
  )
  for name, wall, cpu in phases:
    print(f"{wall:7.2f}  {cpu:6.2f}  {name}")
  print(
    f"{sum(p[1] for p in phases):7.2f}  {sum(p[2] for p in phases):6.2f}  in all; the same "
    f"{train_config.run.steps_per_execution} steps again: {steady:.2f} s wall, so tracing took "
    f"about {phases[-1][1] - steady:.2f} s; the training function was traced "
    f"{model.train_tf_function.experimental_get_tracing_count()} time(s) "
    f"(--optimizer_state={fv.optimizer_state})"
  )


if __name__ == "__main__":
  main()
