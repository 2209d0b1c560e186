"""jmvae_tf/training/runtime.py: the strategy a name means here, the CPU and tf.data threads, the start-up
line of speed settings, the refusal of BatchNorm recalibration on several replicas, and the
precision policy. The machine's rules themselves are test_training_hardware.py's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from test_training_hardware import EPYC_AVX2

from jmvae_tf.core import options
from jmvae_tf.training import hardware, runtime
from pipelines import mnist

BATCH = 100


def _machine(monkeypatch, **changes):
  """runtime.machine_defaults with some decisions changed; the XLA flag it was asked with
  doubles the intra-op threads, so a test can tell it was passed."""
  real = runtime.machine_defaults

  def decided(jit_compile=None):
    base = dataclasses.replace(real(jit_compile), **changes)
    if jit_compile:
      base = dataclasses.replace(base, intra_op_threads=2 * base.intra_op_threads)
    return base

  monkeypatch.setattr(runtime, "machine_defaults", decided)


# --- the strategy ------------------------------------------------------------------------------


def test_resolve_strategy_resolves_auto_for_this_machine_and_refuses_unknown_names(monkeypatch):
  _machine(monkeypatch, strategy="mirrored")
  assert runtime.resolve_strategy("auto") == "mirrored"
  for name in ("mirrored", "default", "one_device", "multi_worker"):
    assert runtime.resolve_strategy(name) == name
  with pytest.raises(ValueError, match="unknown strategy 'tpu'; choose from .'auto', 'mirrored'"):
    runtime.resolve_strategy("tpu")


def test_make_strategy_builds_what_each_name_means():
  assert runtime.make_strategy("default") is tf.distribute.get_strategy()
  one = runtime.make_strategy("one_device")
  assert isinstance(one, tf.distribute.OneDeviceStrategy) and one.num_replicas_in_sync == 1
  gpus = tf.config.list_logical_devices("GPU")
  mirrored = runtime.make_strategy("mirrored")
  assert isinstance(mirrored, tf.distribute.MirroredStrategy)
  assert mirrored.num_replicas_in_sync == max(1, len(gpus))  # one CPU device without a GPU
  assert runtime.is_chief(runtime.make_strategy("default"))  # one process writes


def test_shard_by_data_sets_the_data_policy_and_leaves_other_inputs_alone():
  assert runtime.shard_by_data(None) is None
  sharded = runtime.shard_by_data(tf.data.Dataset.range(4))
  policy = sharded.options().experimental_distribute.auto_shard_policy
  assert policy == tf.data.experimental.AutoShardPolicy.DATA
  assert list(sharded.as_numpy_iterator()) == [0, 1, 2, 3]


# --- threads -----------------------------------------------------------------------------------


def test_configure_cpu_threads_auto_asks_the_machine_with_the_xla_flag(monkeypatch):
  _machine(monkeypatch, intra_op_threads=3)
  set_intra, set_inter = [], []
  monkeypatch.setattr(tf.config.threading, "set_intra_op_parallelism_threads", set_intra.append)
  monkeypatch.setattr(tf.config.threading, "set_inter_op_parallelism_threads", set_inter.append)
  assert runtime.configure_cpu_threads(runtime.AUTO) == (3, 0)
  assert runtime.configure_cpu_threads(runtime.AUTO, jit_compile=True) == (6, 0)
  assert runtime.configure_cpu_threads(0, 2) == (0, 2)  # 0: TensorFlow's default, not set
  assert runtime.configure_cpu_threads(4) == (4, 0)
  assert set_intra == [3, 6, 4] and set_inter == [2]


def test_input_threads_auto_is_the_machines_and_a_number_is_itself(monkeypatch):
  _machine(monkeypatch, input_threads=5)
  assert runtime.input_threads(runtime.AUTO) == 5
  assert runtime.input_threads(0) == 0 and runtime.input_threads(3) == 3


def test_with_input_threads_is_a_private_pool_with_the_same_batches(mnist_slice):
  train_slice, _ = mnist_slice
  dataset = mnist.train_dataset(train_slice.images, train_slice.labels, BATCH, seed=3)
  assert runtime.with_input_threads(dataset, 0) is dataset  # tf.data's own, autotuned
  private = runtime.with_input_threads(dataset, 1)
  options = private.options()
  assert options.threading.private_threadpool_size == 1
  assert options.autotune.enabled is False
  for a, b in zip(dataset.take(3), private.take(3)):
    for name in ("image", "label"):
      np.testing.assert_array_equal(a[name].numpy(), b[name].numpy())


# --- the start-up line -------------------------------------------------------------------------


def test_runner_start_up_line_and_bfloat16_warning(monkeypatch, capsys):
  """runtime.speed_settings: the line names each setting; bfloat16 without the
  instructions warns on stderr."""

  monkeypatch.setattr(hardware, "describe_cpu", lambda: hardware.parse_cpuinfo(EPYC_AVX2))
  train_config = options.TrainConfig.make(precision="mixed_bfloat16", jit_compile=False)
  line = runtime.speed_settings(train_config, intra_op_flag=-1, intra_op=2)
  assert line.startswith("speed settings: AMD EPYC 7B13, 4 cores, avx2 fma")
  assert "intra-op threads 2 (auto)" in line and "XLA off;" in line
  assert line.endswith("mixed_bfloat16")
  assert "will train slower than float32" in capsys.readouterr().err
  assert "tf.data autotuned (auto)" in line
  line = runtime.speed_settings(options.TrainConfig.make(jit_compile=True), 1, 1, 1, 1)
  assert "intra-op threads 1;" in line and "XLA on" in line
  assert "tf.data threads 1, not autotuned;" in line
  assert "slower" not in capsys.readouterr().err
  # Left unset, XLA is the machine's choice, and the line says so.
  _machine(monkeypatch, jit_compile=True)
  assert "XLA on (auto)" in runtime.speed_settings(options.TrainConfig.make(), 1, 1, 1, 1)


def test_xla_is_as_asked_else_the_machines_choice_and_off_on_several_replicas(monkeypatch):
  _machine(monkeypatch, jit_compile=True)
  assert runtime.resolve_jit_compile(None) is True
  assert runtime.resolve_jit_compile(False) is False
  assert runtime.resolve_jit_compile(None, "one_device") is True
  for several in ("multi_worker", "mirrored"):
    assert runtime.resolve_jit_compile(None, several) is False
    assert runtime.resolve_jit_compile(True, several) is True
  assert runtime.resolve_jit_compile(None, "auto", num_replicas=2) is False
  _machine(monkeypatch, jit_compile=False)
  assert runtime.resolve_jit_compile(None) is False and runtime.resolve_jit_compile(True) is True


# --- BatchNorm recalibration runs on one replica -----------------------------------------------


def test_recalibration_is_refused_for_a_strategy_of_several_replicas(monkeypatch):
  """Named strategies in TrainConfig itself, "auto" as it resolves here, or the strategy
  training was given, by its replicas; without recalibration anything goes."""
  named = options.TrainConfig.make(strategy="multi_worker", recalibrate_batchnorm=2)
  with pytest.raises(ValueError, match="not with strategy 'multi_worker'; train with"):
    runtime.check_recalibration(named)
  with pytest.raises(ValueError, match="not with strategy 'mirrored'"):
    runtime.check_recalibration(named.replace(strategy="mirrored"))
  runtime.check_recalibration(named.replace(strategy="one_device"))
  runtime.check_recalibration(named.replace(recalibrate_batchnorm=0))
  auto = options.TrainConfig.make(recalibrate_batchnorm=2)
  _machine(monkeypatch, strategy="mirrored")
  with pytest.raises(ValueError, match="but strategy 'auto' is 'mirrored' here; train with --str"):
    runtime.check_recalibration(auto)
  runtime.check_recalibration(auto, tf.distribute.get_strategy())  # the one given: one replica
  if len(tf.config.list_logical_devices("CPU")) < 2:
    pytest.skip("needs two logical CPU devices (set up in conftest before TF starts)")
  two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  with pytest.raises(ValueError, match="but MirroredStrategy has 2 replicas; train with"):
    runtime.check_recalibration(named.replace(strategy="one_device"), two)


# --- precision ---------------------------------------------------------------------------------


def test_precision_policy_holds_for_its_block_and_is_restored_even_on_failure():
  assert keras.mixed_precision.global_policy().name == "float32"
  with runtime.precision_policy("mixed_bfloat16"):
    layer = keras.layers.Dense(2)
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
  assert layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32"
  assert keras.mixed_precision.global_policy().name == "float32"
  with pytest.raises(RuntimeError, match="inside"):
    with runtime.precision_policy("mixed_bfloat16"):
      raise RuntimeError("inside")
  assert keras.mixed_precision.global_policy().name == "float32"
