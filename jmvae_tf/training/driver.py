"""The training driver: `train` builds (or restores) a model in a model directory and runs
Keras' `fit` with the project's callbacks. The runner parses flags and calls it.

Every check runs before anything is written (run_dir.check_model_dir, and again under the
directory's lock); the model directory (run_dir), the strategy and threads (runtime) and the
callbacks (callbacks) have modules of their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from jmvae_tf.core.files import disk_full, first_line, warn_once
from jmvae_tf.core.options import TrainConfig
from jmvae_tf.models.config import ModelConfig, build_model
from jmvae_tf.training import summaries
from jmvae_tf.training.batchnorm import batchnorm_layers
from jmvae_tf.training.callbacks import (
  CheckpointEveryEpoch,
  RecalibrateBatchNorm,
  StopOnDivergence,
  StopOnSignal,
  WarmUp,
)
from jmvae_tf.training.run_dir import (
  CKPT_DIR,
  FLAGS_HISTORY_FILE,
  LOG_DIR,
  TRAIN_FILE,
  RunDirError,
  check_model_dir,
  make_checkpoint,
  model_dir_lock,
  remove_partial_saves,
  write_run_files,
)
from jmvae_tf.training.runtime import (
  check_recalibration,
  is_chief,
  make_strategy,
  precision_policy,
  resolve_jit_compile,
  shard_by_data,
  with_input_threads,
)


def make_optimizer(train_config: TrainConfig):
  """Adam with the paper's settings.

  The legacy (OptimizerV2) Adam applies each update with TensorFlow's fused
  ResourceApplyAdam kernel: one multithreaded pass over the 3M parameters. The
  new Keras optimizer runs a chain of element-wise ops (XLA-compiled or not),
  which was clearly slower for JMVAE-kl on 2 CPU cores (benchmarks/README.md).
  """
  return keras.optimizers.legacy.Adam(
    train_config.run.learning_rate,
    epsilon=train_config.fixed.adam_epsilon,
    global_clipnorm=train_config.fixed.clipnorm,
  )


@dataclasses.dataclass
class TrainResult:
  model: keras.Model
  history: Dict[str, list]
  initial_epoch: int


def train(
  model_config: ModelConfig,
  train_config: TrainConfig,
  model_dir: str,
  train_dataset_fn: Callable[[int], tf.data.Dataset],
  steps_per_epoch: int,
  eval_dataset: Optional[tf.data.Dataset] = None,
  probe_batch: Optional[Dict] = None,
  flags_text: Optional[str] = None,
  verbose: int = 1,
  strategy=None,
  input_threads: int = 0,
) -> TrainResult:
  """Trains (or resumes) `model_config` in `model_dir` up to `train_config.run.epochs` epochs.

  train_dataset_fn(start_epoch) returns an infinite dataset of global batches that
  starts at `start_epoch`, so a resumed run reads exactly what it would have read.
  `input_threads` (with_input_threads) runs it and eval_dataset on a private thread pool.

  Every check (check_model_dir: another model, unreadable checkpoints, a resume that
  changes a fixed setting; check_recalibration) runs before anything is written. The run holds
  MODEL_DIR/.lock throughout (model_dir_lock); a loss term or weight that turns non-finite
  raises TrainingDiverged, with no non-finite checkpoint saved; SIGINT/SIGTERM raise
  TrainingInterrupted (StopOnSignal); a full disk is a RunDirError.
  """
  check_model_dir(model_dir, model_config, train_config)  # refuses, touching nothing
  check_recalibration(train_config, strategy)
  # The workers of one multi-worker run share the directory: only other runs are locked out,
  # by its chief.
  lock = (
    model_dir_lock(model_dir)
    if train_config.run.strategy != "multi_worker" or (strategy is not None and is_chief(strategy))
    else contextlib.nullcontext()
  )
  with lock, contextlib.ExitStack() as stack:
    # Under the lock: the directory is now ours, so look again and clear interrupted saves.
    checkpoint_path = check_model_dir(model_dir, model_config, train_config)
    strategy = strategy or make_strategy(train_config.run.strategy)
    chief = is_chief(strategy)
    for path in remove_partial_saves(model_dir) if chief else []:
      warn_once(f"removed {path}, left by an interrupted save")
    keras.utils.set_random_seed(model_config.seed)  # reproducible initial weights
    with strategy.scope():
      with precision_policy(train_config.fixed.precision):
        model = build_model(model_config)
      optimizer = make_optimizer(train_config)
      model.compile(
        optimizer=optimizer,
        jit_compile=resolve_jit_compile(
          train_config.run.jit_compile,
          train_config.run.strategy,
          strategy.num_replicas_in_sync,
        ),
        steps_per_execution=train_config.run.steps_per_execution,
      )
      # The step's metrics are already the mean over every replica; Keras' "auto" would sum
      # them over the workers of a multi_worker run (the loss shown N times too large).
      model.distribute_reduction_method = "first"
      # Adam's step counter and moments, made now: the first step's seed reads the counter,
      # made inside a replica's step it breaks MirroredStrategy over several devices
      # (uninitialised), and variables made in the first trace of the training function
      # make tf.function trace it again.
      model.build_optimizer_state()
      epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
      checkpoint = make_checkpoint(model, optimizer, epoch)
      if checkpoint_path:
        # Every variable exists now (the optimisers' slots and learning rates included), so
        # the restore fills them all at once.
        checkpoint.restore(checkpoint_path).assert_existing_objects_matched().expect_partial()
        restored_rate = np.float32(optimizer.learning_rate.numpy())
    initial_epoch = int(epoch.numpy())

    if initial_epoch >= train_config.run.epochs:  # nothing trains, so nothing is written
      if verbose:
        print(
          f"{model_dir}: already trained for {initial_epoch} epochs "
          f"(asked {train_config.run.epochs}); nothing to do"
        )
      return TrainResult(model, {}, initial_epoch)
    if checkpoint_path and restored_rate != np.float32(train_config.run.learning_rate):
      # A new rate is applied (RESUME_RULES), not lost to the checkpoint's.
      optimizer.learning_rate = train_config.run.learning_rate
      if verbose:
        print(
          f"learning rate {restored_rate:g} -> {train_config.run.learning_rate:g} from epoch "
          f"{initial_epoch + 1} (recorded in {TRAIN_FILE} and {FLAGS_HISTORY_FILE})"
        )
    if chief:
      tf.io.gfile.makedirs(model_dir)  # where model_dir_lock has not (a multi_worker run)
      write_run_files(model_dir, model_config, train_config, flags_text, initial_epoch)
    if verbose and initial_epoch:
      print(f"Resuming from {checkpoint_path} at epoch {initial_epoch + 1}")

    log_dir = os.path.join(model_dir, LOG_DIR)
    # A worker other than the chief saves with it, into a directory of its own that goes.
    save_dir = model_dir if chief else tempfile.mkdtemp(prefix="jmvae-worker-")
    if not chief:
      stack.callback(shutil.rmtree, save_dir, ignore_errors=True)
    manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(save_dir, CKPT_DIR), max_to_keep=3
    )
    saver = CheckpointEveryEpoch(
      manager, epoch, save_dir, last_good=checkpoint_path, kept_dir=None if chief else model_dir
    )
    stopper = StopOnSignal(saver)
    callbacks = [WarmUp(train_config.fixed.warmup_epochs), StopOnDivergence(saver)]
    if train_config.run.recalibrate_batchnorm and not batchnorm_layers(model):
      warn_once(f"recalibrate_batchnorm: {model_config.model} has no BatchNorm layer; ignored")
    elif train_config.run.recalibrate_batchnorm:  # before the saver: the last checkpoint holds it
      callbacks.append(
        RecalibrateBatchNorm(
          lambda: train_dataset_fn(train_config.run.epochs - 1),  # the last epoch's batches
          train_config.run.recalibrate_batchnorm,
          model_config.seed,
        )
      )
    callbacks.append(saver)
    if chief:  # summaries need no other worker: only the chief writes them
      callbacks.append(keras.callbacks.TensorBoard(log_dir, histogram_freq=0, write_graph=False))
      callbacks.append(summaries.Summaries(log_dir, model_config, train_config, probe_batch))
    callbacks.append(stopper)  # last: a signal at an epoch's end lets it be saved and logged
    try:
      with stopper.handling_signals():
        history = model.fit(
          shard_by_data(with_input_threads(train_dataset_fn(initial_epoch), input_threads)),
          epochs=train_config.run.epochs,
          initial_epoch=initial_epoch,
          steps_per_epoch=steps_per_epoch,
          validation_data=shard_by_data(with_input_threads(eval_dataset, input_threads)),
          validation_freq=train_config.run.eval_every,
          callbacks=callbacks,
          verbose=verbose,
        )
    except (tf.errors.ResourceExhaustedError, OSError) as e:  # e.g. TensorBoard's events
      if not disk_full(e):
        raise
      raise RunDirError(
        f"could not write under {model_dir} ({first_line(e)}): is the disk full? "
        f"{saver.describe_last_good()}"
      ) from None
  return TrainResult(model, history.history, initial_epoch)
