"""Where and how the steps run: the distribution strategy from the devices, CPU and tf.data
threads, the precision policy, and which process of a multi-worker run writes.

The settings left on "auto" are decided once per process from the machine
(`machine_defaults`: jmvae_tf/training/hardware.py's rules over the CPU and the GPUs this process sees).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Optional

import tensorflow as tf
import tf_keras as keras

from jmvae_tf.core.files import warn_once
from jmvae_tf.core.options import AUTO, STRATEGIES, TrainConfig
from jmvae_tf.training import hardware


@functools.lru_cache(maxsize=None)
def _machine(jit_compile: Optional[bool]) -> hardware.Defaults:
  num_gpus = len(tf.config.list_physical_devices("GPU"))
  return hardware.decide(hardware.describe_cpu(), num_gpus, jit_compile)


def machine_defaults(jit_compile: Optional[bool] = None) -> hardware.Defaults:
  """The speed defaults for the devices this process sees (jmvae_tf/training/hardware.py), decided
  once per process; `jit_compile`: whether XLA was asked for (None: left to the machine)."""
  return _machine(None if jit_compile is None else bool(jit_compile))


def resolve_jit_compile(
  jit_compile: Optional[bool], strategy: str = "auto", num_replicas: int = 1
) -> bool:
  """Whether the step is compiled with XLA: as asked, else the machine's choice, which was
  measured on one device only, so a run on several replicas (a mirrored or multi_worker
  strategy, or `num_replicas` > 1) keeps it off unless asked."""
  if jit_compile is not None:
    return bool(jit_compile)
  if strategy not in ("auto", "default", "one_device") or num_replicas > 1:
    return False
  return machine_defaults(None).jit_compile


def resolve_strategy(name: str, jit_compile: Optional[bool] = None) -> str:
  """The strategy `name` means here: "auto" resolved for this machine, the others as named."""
  if name not in STRATEGIES:
    raise ValueError(f"unknown strategy {name!r}; choose from {STRATEGIES}")
  return machine_defaults(jit_compile).strategy if name == "auto" else name


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
  """auto: MirroredStrategy over the GPUs when there are several, else no distribution
  strategy (one device pays nothing for mirroring; the speed issue measured a
  MirroredStrategy over one CPU at about half the speed); mirrored: all visible GPUs (one
  CPU device when there is none), forced."""
  name = resolve_strategy(name)
  if name == "mirrored":
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy([d.name for d in gpus] or ["/cpu:0"])
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "one_device":
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
  return tf.distribute.MultiWorkerMirroredStrategy()


def check_recalibration(train_config: TrainConfig, strategy=None):
  """Refuses recalibrate_batchnorm where training would run on several replicas (`strategy`,
  or the one train_config's strategy makes here, "auto" resolved), before anything is read
  or written."""
  run = train_config.run
  if not run.recalibrate_batchnorm:
    return
  if strategy is not None:
    several = strategy.num_replicas_in_sync > 1
    what = f"but {type(strategy).__name__} has {strategy.num_replicas_in_sync} replicas"
  else:
    name = resolve_strategy(run.strategy, run.jit_compile)
    several = name in ("mirrored", "multi_worker")
    auto = run.strategy == "auto"
    what = f"but strategy 'auto' is {name!r} here" if auto else f"not with strategy {name!r}"
  if several:
    raise ValueError(
      f"recalibrate_batchnorm runs on one replica, {what}; train with "
      "--strategy=one_device to use it"
    )


def configure_cpu_threads(
  intra_op: int, inter_op: int = 0, jit_compile: Optional[bool] = False
) -> tuple:
  """Sets TensorFlow's CPU thread pools; call before TensorFlow runs any op.

  intra_op = AUTO: the machine's default (hardware.decide: with no GPU, half the usable
  cores; the JMVAE family's networks are independent branches, and at batch 100 running
  them side by side on the inter-op pool beat splitting each small matmul over all cores,
  benchmarks/README.md; under XLA, `jit_compile`, TF's default, since a compiled step runs
  on the intra-op pool alone). 0 keeps TF's default.
  """
  if intra_op == AUTO:
    intra_op = machine_defaults(jit_compile).intra_op_threads
  if intra_op:
    tf.config.threading.set_intra_op_parallelism_threads(intra_op)
  if inter_op:
    tf.config.threading.set_inter_op_parallelism_threads(inter_op)
  return intra_op, inter_op


def input_threads(flag: int) -> int:
  """The input pipeline's threads: `flag`, or for AUTO the machine's default
  (hardware.decide: with no GPU, a private pool of half the cores)."""
  return machine_defaults().input_threads if flag == AUTO else flag


def with_input_threads(dataset: tf.data.Dataset, threads: int) -> tf.data.Dataset:
  """`dataset` run on a private pool of `threads` threads without autotuning, or as it is
  for 0 (tf.data's shared, autotuned pool). The batches are the same either way: the
  pipelines are deterministic."""
  if not threads or not isinstance(dataset, tf.data.Dataset):
    return dataset
  options = tf.data.Options()
  options.autotune.enabled = False
  options.threading.private_threadpool_size = threads
  return dataset.with_options(options)


def speed_settings(
  train_config: TrainConfig,
  intra_op_flag: int,
  intra_op: int,
  input_threads_flag: int = AUTO,
  input_threads: int = 0,
) -> str:
  """runners.train's start-up line: the machine and every speed setting this run uses
  (hardware.settings_line); warns on stderr when the precision asked for will be slower
  here than float32 (bfloat16 without bfloat16 instructions)."""
  cpu = hardware.describe_cpu()
  num_gpus = len(tf.config.list_physical_devices("GPU"))
  warning = hardware.precision_warning(cpu, num_gpus, train_config.fixed.precision)
  if warning:
    warn_once(warning)
  run = train_config.run
  return hardware.settings_line(
    cpu,
    num_gpus,
    intra_op,
    intra_op_flag == AUTO,
    input_threads,
    input_threads_flag == AUTO,
    resolve_jit_compile(run.jit_compile, run.strategy),
    resolve_strategy(run.strategy),
    run.strategy == "auto",
    train_config.fixed.precision,
    jit_auto=run.jit_compile is None,
  )


@contextlib.contextmanager
def precision_policy(name: str):
  """Builds layers under a Keras dtype policy ("float32" or "mixed_bfloat16"),
  restoring the global policy after. Variables stay float32 either way, so
  checkpoints do not depend on it; heads and likelihoods stay float32."""
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(previous)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the model directory: always, but under multi_worker only
  the chief (TF_CONFIG's "chief" task, else worker 0). The other workers run every step and
  every save with it (a save may be a collective op) but write to a temporary directory."""
  return strategy.extended.should_checkpoint


def shard_by_data(dataset):
  """`dataset` with tf.data's DATA auto-shard policy: under multi_worker each worker builds
  every global batch (a pure function of seed, epoch and step) and keeps its own part of
  it, as replica i of one machine would (rebatched into per-replica parts, worker i taking
  part i). Without a distribution over workers it changes nothing."""
  if not isinstance(dataset, tf.data.Dataset):  # None, or what else Keras takes as data
    return dataset
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return dataset.with_options(options)
