"""Training driver: strategy, model directory, checkpoints, warm-up, summaries.

The runner parses flags and calls `train`; everything that can be tested lives
here. Layout of a model directory:

  run.json            the ModelConfig (rebuilds the model for evaluation/export)
  flags.txt           the resolved flags, usable as a --flagfile
  ckpt/               tf.train checkpoints: model, optimiser, epoch (one per epoch)
  logs/train, logs/validation   TensorBoard events
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from typing import Callable, Dict, Optional

import tensorflow as tf
import tf_keras as keras

from jmvae_tf.config import ModelConfig, TrainConfig, build_model
from jmvae_tf.models import MultimodalVAE

RUN_FILE = "run.json"
FLAGS_FILE = "flags.txt"
CKPT_DIR = "ckpt"
LOG_DIR = "logs"
STRATEGIES = ("mirrored", "default", "one_device", "multi_worker")


class RunDirError(ValueError):
  """The model directory cannot be used for this run (e.g. it holds another model)."""


def make_strategy(name: str = "mirrored") -> tf.distribute.Strategy:
  """mirrored: all visible GPUs (one CPU device when there is none)."""
  if name == "mirrored":
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy([d.name for d in gpus] or ["/cpu:0"])
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "one_device":
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"unknown strategy {name!r}; choose from {STRATEGIES}")


def configure_cpu_threads(intra_op: int = -1, inter_op: int = 0) -> tuple:
  """Sets TensorFlow's CPU thread pools; call before TensorFlow runs any op.

  intra_op = -1 (auto): with no GPU, half the cores. The JMVAE family's networks
  (joint and unimodal encoders, one decoder per modality) are independent
  branches, and at batch 100 running them side by side on the inter-op pool beat
  splitting each small matmul over all cores: on 2 cores, intra_op=1 trained
  JMVAE-kl 7-20% faster than TF's default (benchmarks/README.md). 0 keeps TF's default.
  """
  if intra_op < 0:
    intra_op = 0 if tf.config.list_physical_devices("GPU") else max(1, (os.cpu_count() or 2) // 2)
  if intra_op:
    tf.config.threading.set_intra_op_parallelism_threads(intra_op)
  if inter_op:
    tf.config.threading.set_inter_op_parallelism_threads(inter_op)
  return intra_op, inter_op


def warmup_weight(epoch: int, warmup_epochs: int) -> float:
  """KL weight in `epoch` (0-based): rises linearly from 0 to 1 over warmup_epochs."""
  if warmup_epochs <= 0:
    return 1.0
  return min(1.0, epoch / warmup_epochs)


def make_optimizer(train_config: TrainConfig):
  """Adam with the paper's settings.

  The legacy (OptimizerV2) Adam applies each update with TensorFlow's fused
  ResourceApplyAdam kernel: one multithreaded pass over the 3M parameters. The
  new Keras optimizer runs a chain of element-wise ops (XLA-compiled or not),
  which was clearly slower for JMVAE-kl on 2 CPU cores (benchmarks/README.md).
  """
  return keras.optimizers.legacy.Adam(train_config.learning_rate, epsilon=train_config.adam_epsilon,
                                      global_clipnorm=train_config.clipnorm)


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


# --- model directory --------------------------------------------------------------------

def read_model_config(model_dir: str) -> Optional[ModelConfig]:
  path = os.path.join(model_dir, RUN_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return ModelConfig.from_json(f.read())


def latest_checkpoint(model_dir: str) -> Optional[str]:
  return tf.train.latest_checkpoint(os.path.join(model_dir, CKPT_DIR))


def check_model_dir(model_dir: str, config: ModelConfig) -> Optional[str]:
  """Fails, touching nothing, if `model_dir` holds a run of a different model.

  Returns the checkpoint to resume from (None for a fresh run).
  """
  if tf.io.gfile.exists(model_dir) and not tf.io.gfile.isdir(model_dir):
    raise RunDirError(f"--model_dir={model_dir} exists and is not a directory")
  checkpoint = latest_checkpoint(model_dir)
  saved = read_model_config(model_dir)
  if saved is not None and checkpoint is not None and saved != config:
    detail = ", ".join(f"--{k} {a!r} vs {b!r}" for k, (a, b) in saved.differences(config).items())
    raise RunDirError(f"--model_dir={model_dir} holds a checkpoint of a different model "
                      f"({detail}; saved vs asked); use another --model_dir")
  return checkpoint


def make_checkpoint(model: MultimodalVAE, optimizer, epoch: tf.Variable) -> tf.train.Checkpoint:
  return tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch)


def restore_model(model_dir: str, checkpoint: Optional[str] = None) -> MultimodalVAE:
  """Rebuilds the model saved in `model_dir` and loads its weights (for evaluation/export)."""
  config = read_model_config(model_dir)
  if config is None:
    raise RunDirError(f"--model_dir={model_dir} has no {RUN_FILE}: not a model directory of runners.train")
  checkpoint = checkpoint or latest_checkpoint(model_dir)
  if checkpoint is None:
    raise RunDirError(f"--model_dir={model_dir} has no checkpoint under {CKPT_DIR}/")
  model = build_model(config)
  tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial().assert_existing_objects_matched()
  return model


# --- callbacks ---------------------------------------------------------------------------

class WarmUp(keras.callbacks.Callback):
  """Sets model.kl_weight at the start of each epoch (so it is right after a resume)."""

  def __init__(self, warmup_epochs: int):
    super().__init__()
    self.warmup_epochs = warmup_epochs

  def on_epoch_begin(self, epoch, logs=None):
    self.model.kl_weight.assign(warmup_weight(epoch, self.warmup_epochs))


class CheckpointEveryEpoch(keras.callbacks.Callback):
  """Saves model, optimiser and the number of finished epochs after every epoch."""

  def __init__(self, manager: tf.train.CheckpointManager, epoch: tf.Variable):
    super().__init__()
    self.manager, self.epoch = manager, epoch

  def on_epoch_end(self, epoch, logs=None):
    self.epoch.assign(epoch + 1)
    self.manager.save(checkpoint_number=epoch + 1)


class Summaries(keras.callbacks.Callback):
  """TensorBoard extras beyond Keras' own loss curves: the warm-up weight, the learning
  rate, training examples per second and a histogram of the latent means."""

  def __init__(self, log_dir: str, batch_size: int, probe_batch: Dict[str, tf.Tensor]):
    super().__init__()
    self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "train"))
    self.batch_size = batch_size
    self.probe_batch = probe_batch
    self._start = self._last = None
    self._steps = 0

  def on_epoch_begin(self, epoch, logs=None):
    self._start, self._steps = time.perf_counter(), 0

  def on_train_batch_end(self, batch, logs=None):
    # With steps_per_execution, `batch` is the index of the last step run.
    self._last, self._steps = time.perf_counter(), batch + 1

  def on_epoch_end(self, epoch, logs=None):
    step = epoch + 1
    with self.writer.as_default(step=step):
      tf.summary.scalar("kl_weight", self.model.kl_weight)
      lr = self.model.optimizer.learning_rate
      tf.summary.scalar("learning_rate", lr(self.model.optimizer.iterations) if callable(lr) else lr)
      if self._last is not None and self._last > self._start:
        tf.summary.scalar("examples_per_second", self._steps * self.batch_size / (self._last - self._start))
      mean, _ = self.model.encode(self.probe_batch, training=False)
      tf.summary.histogram("latent_mean", mean)
    self.writer.flush()


# --- the driver --------------------------------------------------------------------------

@dataclasses.dataclass
class TrainResult:
  model: MultimodalVAE
  history: Dict[str, list]
  initial_epoch: int


def train(model_config: ModelConfig, train_config: TrainConfig, model_dir: str,
          train_dataset_fn: Callable[[int], tf.data.Dataset], steps_per_epoch: int,
          eval_dataset: Optional[tf.data.Dataset] = None, probe_batch: Optional[Dict] = None,
          flags_text: Optional[str] = None, verbose: int = 1, strategy=None) -> TrainResult:
  """Trains (or resumes) `model_config` in `model_dir` up to `train_config.epochs` epochs.

  train_dataset_fn(start_epoch) returns an infinite dataset of global batches that
  starts at `start_epoch`, so a resumed run reads exactly what it would have read.
  """
  checkpoint_path = check_model_dir(model_dir, model_config)  # before writing anything
  strategy = strategy or make_strategy(train_config.strategy)
  keras.utils.set_random_seed(model_config.seed)  # reproducible initial weights
  with strategy.scope():
    with precision_policy(train_config.precision):
      model = build_model(model_config)
    optimizer = make_optimizer(train_config)
    model.compile(optimizer=optimizer, jit_compile=train_config.jit_compile,
                  steps_per_execution=train_config.steps_per_execution)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    checkpoint = make_checkpoint(model, optimizer, epoch)
    if checkpoint_path:
      # The optimiser's slots do not exist yet: their values wait in the restore and
      # fill the slots when the first step creates them.
      restored = checkpoint.restore(checkpoint_path).assert_existing_objects_matched()
  initial_epoch = int(epoch.numpy())

  tf.io.gfile.makedirs(model_dir)
  with tf.io.gfile.GFile(os.path.join(model_dir, RUN_FILE), "w") as f:
    f.write(model_config.to_json())
  if flags_text is not None:
    with tf.io.gfile.GFile(os.path.join(model_dir, FLAGS_FILE), "w") as f:
      f.write(flags_text)

  if initial_epoch >= train_config.epochs:
    if checkpoint_path:
      restored.expect_partial()  # no step will run to create the optimiser state it holds
    if verbose:
      print(f"{model_dir}: already trained for {initial_epoch} epochs (asked {train_config.epochs}); nothing to do")
    return TrainResult(model, {}, initial_epoch)
  if verbose and initial_epoch:
    print(f"Resuming from {checkpoint_path} at epoch {initial_epoch + 1}")

  log_dir = os.path.join(model_dir, LOG_DIR)
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, CKPT_DIR), max_to_keep=3)
  callbacks = [WarmUp(train_config.warmup_epochs), CheckpointEveryEpoch(manager, epoch),
               keras.callbacks.TensorBoard(log_dir, histogram_freq=0, write_graph=False)]
  if probe_batch is not None:
    callbacks.append(Summaries(log_dir, train_config.batch_size, probe_batch))
  history = model.fit(train_dataset_fn(initial_epoch), epochs=train_config.epochs, initial_epoch=initial_epoch,
                      steps_per_epoch=steps_per_epoch, validation_data=eval_dataset,
                      validation_freq=train_config.eval_every, callbacks=callbacks, verbose=verbose)
  return TrainResult(model, history.history, initial_epoch)
