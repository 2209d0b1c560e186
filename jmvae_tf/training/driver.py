"""The training driver: `train` trains a model (or the one a config describes) on a data set,
in memory or in a model directory, with Keras' `fit` and the project's callbacks: the KL
warm-up, a stop on a non-finite loss and, with a model directory, a checkpoint every epoch,
exact resume, TensorBoard summaries and the directory's lock. runners.train parses flags and
calls it; so does a notebook.

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
from typing import Dict, Mapping, Optional, Union

import numpy as np
import tensorflow as tf
import tf_keras as keras

from jmvae_tf.core import missing
from jmvae_tf.core.data import ArrayDataSet, DataError, DataSet, PipelineDataSet
from jmvae_tf.core.files import disk_full, first_line, warn_once
from jmvae_tf.core.options import TrainConfig
from jmvae_tf.models import MultimodalVAE, registry
from jmvae_tf.models.config import ModelConfig, build_model
from jmvae_tf.training import summaries
from jmvae_tf.training.batchnorm import batchnorm_layers
from jmvae_tf.training.callbacks import (
  CheckpointEveryEpoch,
  RecalibrateBatchNorm,
  StopOnDivergence,
  StopOnSignal,
  WarmUp,
  warmup_note,
)
from jmvae_tf.training.run_dir import (
  CKPT_DIR,
  FLAGS_HISTORY_FILE,
  LOG_DIR,
  TRAIN_FILE,
  RunDirError,
  check_model_dir,
  checkpoint_config_text,
  config_variable,
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

# Held-out examples the TensorBoard pictures and histogram are drawn from.
PROBE_EXAMPLES = 1000


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


Data = Union[DataSet, Mapping[str, np.ndarray], tf.data.Dataset]


def train(
  model: Union[MultimodalVAE, ModelConfig],
  data: Data,
  model_dir: Optional[str] = None,
  settings: Optional[TrainConfig] = None,
  *,
  validation_data: Optional[Union[Mapping[str, np.ndarray], tf.data.Dataset]] = None,
  verbose: int = 1,
  strategy: Optional[tf.distribute.Strategy] = None,
  input_threads: int = 0,
  flags_text: Optional[str] = None,
  **training_settings,
) -> TrainResult:
  """Trains `model` on `data` up to `settings.run.epochs` epochs; returns the trained model,
  the history of every loss term and the epoch it started from.

  model: a MultimodalVAE (trained in place), or a ModelConfig, whose model is built here
    under the strategy and precision of `settings`, with the initial weights of its seed;
  data: a DataSet (jmvae_tf.core.data: an ArrayDataSet, a pipelines data set, a plug-in's),
    {modality name: array [N, ...]} of the model's modalities (an ArrayDataSet), or a tf.data
    pipeline of such dicts of batches, one pass an epoch (a PipelineDataSet);
    `validation_data` is the held-out part of either, for the held-out loss;
  model_dir: None trains in memory; a directory brings what runners.train has: run.json,
    train.json and the flags (`flags_text`: a runner's resolved flags, for flags.txt), a
    checkpoint every epoch (the last 3 kept), exact resume of a run there, TensorBoard
    summaries and pictures, and the directory's lock;
  settings: the training settings (TrainConfig; the paper's by default), or flat
    `training_settings` over them (epochs=20, warmup_epochs=5, batch_size=100, ...);
  strategy: a tf.distribute.Strategy, or the name of one (the setting: "auto", "mirrored",
    ...); by default the one `settings.run.strategy` names here. A model given as an object
    trains under the strategy it was built under; input_threads:
    runtime.with_input_threads's.

  Each call compiles the model with a fresh Adam and warm-up; only a model directory carries
  them on (a resumed run continues its optimiser, epochs and warm-up exactly).

  The KL warm-up is the callback's (warmup_epochs, the paper's schedule). Every check
  (check_model_dir: another model, unreadable checkpoints, a resume that changes a fixed
  setting; check_recalibration) runs before anything is written. A run in a model directory
  holds MODEL_DIR/.lock throughout (model_dir_lock); a loss term or weight that turns
  non-finite raises TrainingDiverged, with no non-finite checkpoint saved; SIGINT/SIGTERM
  raise TrainingInterrupted (StopOnSignal); a full disk is a RunDirError.
  """
  if not isinstance(model, (MultimodalVAE, ModelConfig)):
    raise TypeError(f"train takes a MultimodalVAE or a ModelConfig, got {type(model).__name__}")
  if isinstance(strategy, str):  # the setting's name ("mirrored"), not a Strategy
    training_settings["strategy"], strategy = strategy, None
  settings = settings or TrainConfig()
  if training_settings:
    settings = settings.replace(**training_settings)
  data = as_dataset(data, model, validation_data)
  model_config = model if isinstance(model, ModelConfig) else None
  if isinstance(model, MultimodalVAE):
    check_model_object(model, data, settings)
    if model_dir is not None:
      model_config = model.config()  # what run.json records; refused for an unregistered class
  data.check_batch_size(settings.fixed.batch_size)
  settings = settings.replace(**recorded_data(data, settings))
  if isinstance(model, MultimodalVAE):
    strategy = strategy or model.distribute_strategy
  if verbose:
    note = warmup_note(settings.run.epochs, settings.fixed.warmup_epochs)
    if note:
      print(note, flush=True)
  if model_dir is None:
    return _train_in_memory(model, data, settings, verbose, strategy, input_threads)
  return _train_in_directory(
    model, model_config, data, model_dir, settings, verbose, strategy, input_threads, flags_text
  )


def recorded_data(data: DataSet, settings: TrainConfig) -> Dict[str, object]:
  """What train.json records of the data, so that a resume on other data is refused and what
  reads the run makes the same data: its options, its fingerprint and how many training
  examples it has (a pipeline's are not known). A num_train the data does not have is refused."""
  recorded = {
    # The data set's own record of its options; a data set that keeps none leaves the settings'.
    "data_options": data.options or settings.fixed.data_options,
    "data_fingerprint": data.fingerprint(),
  }
  count = data.num_examples("train")
  if count:
    asked = settings.fixed.num_train
    if asked is not None and asked != count:
      raise DataError(
        f"num_train={asked}, but {data.name!r} has {count} training examples: make the data "
        "set with the examples to train on (e.g. registry.make_dataset(..., num_train=N))"
      )
    recorded["num_train"] = count
  return recorded


def as_dataset(data: Data, model, validation_data=None) -> DataSet:
  """`data` as a DataSet: as it is; arrays as an ArrayDataSet, a tf.data pipeline of batches as
  a PipelineDataSet (one pass an epoch), of the model's modalities."""
  if isinstance(data, DataSet):
    if validation_data is not None:
      raise ValueError("validation_data goes with arrays; a DataSet holds its own held-out split")
    return data
  config = model if isinstance(model, ModelConfig) else None
  modalities = config.modalities if config else model.data_modalities
  architecture = config.architecture if config else model.architecture.name
  if isinstance(data, Mapping):
    if validation_data is not None and not isinstance(validation_data, Mapping):
      raise DataError("validation_data of arrays must be arrays too ({modality name: array})")
    return ArrayDataSet(modalities, dict(data), validation_data, architecture=architecture)
  if isinstance(data, tf.data.Dataset):
    if validation_data is not None and not isinstance(validation_data, tf.data.Dataset):
      raise DataError("validation_data of a tf.data pipeline must be a tf.data pipeline too")
    return PipelineDataSet(modalities, data, validation_data, architecture=architecture)
  raise TypeError(
    f"train reads a DataSet, a dict of arrays or a tf.data.Dataset of batches, got "
    f"{type(data).__name__}"
  )


def check_model_object(model: MultimodalVAE, data: DataSet, settings: TrainConfig) -> None:
  """A model given as an object must read `data`'s modalities and have been built under the
  precision `settings` records; it takes the data set's name for its config."""
  name = settings.run.strategy
  if name not in ("auto", "default"):
    raise ValueError(
      f"strategy={name!r}: a model given as an object trains under the strategy it was built "
      "under (build it in that strategy's scope) or give its ModelConfig, which train builds "
      "under the strategy named"
    )
  given = {m.name: m for m in data.modalities}
  for m in model.data_modalities:
    if given.get(m.name) != m:
      theirs = given[m.name].to_dict() if m.name in given else "missing"
      raise DataError(
        f"the data set {data.name!r} does not give what the model reads: its {m.name!r} is "
        f"{theirs}, the model's {m.to_dict()}"
      )
  policy = model.dtype_policy.name
  if policy != settings.fixed.precision:
    raise ValueError(
      f"the model was built under Keras' {policy!r} policy, not precision="
      f"{settings.fixed.precision!r}: build it under that policy, or pass its ModelConfig"
    )
  if not model.dataset_name:
    model.dataset_name = data.name


def _compile(model, settings: TrainConfig, num_replicas: int):
  optimizer = make_optimizer(settings)
  model.compile(
    optimizer=optimizer,
    jit_compile=resolve_jit_compile(settings.run.jit_compile, settings.run.strategy, num_replicas),
    steps_per_execution=settings.run.steps_per_execution,
  )
  # The step's metrics are already the mean over every replica; Keras' "auto" would sum
  # them over the workers of a multi_worker run (the loss shown N times too large).
  model.distribute_reduction_method = "first"
  # Adam's step counter and moments, made now: the first step's seed reads the counter,
  # made inside a replica's step it breaks MirroredStrategy over several devices
  # (uninitialised), and variables made in the first trace of the training function
  # make tf.function trace it again.
  model.build_optimizer_state()
  return optimizer


def check_incomplete(model: MultimodalVAE, data: DataSet, settings: TrainConfig, verbose) -> None:
  """Where some training examples lack modalities (hidden on demand, or the data's own gaps):
  a ValueError before anything is written for a model that cannot learn from them (the
  VAE-GAN), a DataError where no example adds to its objective; else one line (verbose) of
  how many lack what and how many the model learns from (CVAE/CMMA skip those that lack their
  target or condition)."""
  presence = data.presence(settings.fixed.data_seed)
  masked = presence is not None or (
    isinstance(data, PipelineDataSet)
    and missing.PRESENT in data.train_dataset(settings.fixed.batch_size, 0).element_spec
  )
  if not masked:
    return
  name = registry.name_of(type(model)) or type(model).__name__
  problem = model.incomplete_problem()
  if problem is not None:
    raise ValueError(f"{data.name}: some training examples lack a modality; {problem}")
  if presence is None:
    return
  used = model.learns_from(presence)
  n = len(used)
  if not used.any():
    raise DataError(
      f"{data.name}: {missing.describe(presence)}: none holds what {name} learns from"
    )
  if verbose:
    skipped = n - int(used.sum())
    needs = model.conditioning_modalities + model.generated_modalities
    why = (
      f"each lacks one of {', '.join(repr(m) for m in needs)}, which it needs both of"
      if model.conditioning_modalities
      else "they hold none of its modalities"
    )
    print(
      f"{data.name}: {missing.describe(presence)}. {name} learns from {int(used.sum()):,} "
      f"of them" + (f" and skips {skipped:,} ({why})" if skipped else ""),
      flush=True,
    )


def _build(model_config: ModelConfig, settings: TrainConfig):
  keras.utils.set_random_seed(model_config.seed)  # reproducible initial weights
  with precision_policy(settings.fixed.precision):
    return build_model(model_config)


def _held_out(data: DataSet, settings: TrainConfig, input_threads: int):
  if not data.has_held_out():
    return None
  split = data.held_out_split()
  dataset = data.eval_dataset(split, settings.fixed.batch_size, seed=settings.fixed.data_seed)
  return shard_by_data(with_input_threads(dataset, input_threads))


def _train_stream(data: DataSet, settings: TrainConfig, start_epoch: int, input_threads: int):
  """The training batches from `start_epoch` on (a pure function of data_seed, epoch, step)."""
  dataset = data.train_dataset(settings.fixed.batch_size, settings.fixed.data_seed, start_epoch)
  return shard_by_data(with_input_threads(dataset, input_threads))


def _train_in_memory(model, data, settings, verbose, strategy, input_threads) -> TrainResult:
  """Keras' fit with the warm-up and the stop on divergence; nothing is written."""
  strategy = strategy or (
    model.distribute_strategy
    if isinstance(model, MultimodalVAE)
    else make_strategy(settings.run.strategy)
  )
  check_recalibration(settings, strategy)
  with strategy.scope():
    if isinstance(model, ModelConfig):
      model = _build(model, settings)
    check_incomplete(model, data, settings, verbose)
    _compile(model, settings, strategy.num_replicas_in_sync)
  callbacks = [WarmUp(settings.fixed.warmup_epochs), StopOnDivergence(None)]
  history = model.fit(
    _train_stream(data, settings, 0, input_threads),
    epochs=settings.run.epochs,
    steps_per_epoch=data.steps_per_epoch(settings.fixed.batch_size),
    validation_data=_held_out(data, settings, input_threads),
    validation_freq=settings.run.eval_every,
    callbacks=callbacks + _recalibration(model, data, settings),
    verbose=verbose,
  )
  return TrainResult(model, history.history, 0)


def _recalibration(model, data: DataSet, settings: TrainConfig):
  """[RecalibrateBatchNorm] where the settings ask for it and the model has BatchNorm (else
  a warning), over the last epoch's batches; [] otherwise."""
  if not settings.run.recalibrate_batchnorm:
    return []
  if not batchnorm_layers(model):
    name = registry.name_of(type(model)) or model.name
    warn_once(f"recalibrate_batchnorm: {name} has no BatchNorm layer; ignored")
    return []
  fixed = settings.fixed
  return [
    RecalibrateBatchNorm(
      lambda: data.train_dataset(fixed.batch_size, fixed.data_seed, settings.run.epochs - 1),
      settings.run.recalibrate_batchnorm,
      model.seed,
    )
  ]


def _train_in_directory(
  model, model_config, data, model_dir, settings, verbose, strategy, input_threads, flags_text
) -> TrainResult:
  check_model_dir(model_dir, model_config, settings)  # refuses, touching nothing
  check_recalibration(settings, strategy)
  # The workers of one multi-worker run share the directory: only other runs are locked out,
  # by its chief.
  lock = (
    model_dir_lock(model_dir)
    if settings.run.strategy != "multi_worker" or (strategy is not None and is_chief(strategy))
    else contextlib.nullcontext()
  )
  with lock, contextlib.ExitStack() as stack:
    # Under the lock: the directory is now ours, so look again and clear interrupted saves.
    checkpoint_path = check_model_dir(model_dir, model_config, settings)
    strategy = strategy or make_strategy(settings.run.strategy)
    chief = is_chief(strategy)
    for path in remove_partial_saves(model_dir) if chief else []:
      warn_once(f"removed {path}, left by an interrupted save")
    run_config = config_variable(model_config)
    with strategy.scope():
      if isinstance(model, ModelConfig):
        model = _build(model, settings)
      check_incomplete(model, data, settings, verbose and chief)
      optimizer = _compile(model, settings, strategy.num_replicas_in_sync)
      epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
      checkpoint = make_checkpoint(model, optimizer, epoch, run_config)
      if checkpoint_path:
        # Every variable exists now (the optimisers' slots and learning rates included), so
        # the restore fills them all at once (check_model_dir compared the configs). A
        # checkpoint from before it carried its config is restored without it, its save
        # counter carried over, so the next save numbers on as an uninterrupted run's.
        if checkpoint_config_text(checkpoint_path) is not None:
          checkpoint.restore(checkpoint_path).assert_existing_objects_matched().expect_partial()
        else:
          older = make_checkpoint(model, optimizer, epoch)
          older.restore(checkpoint_path).assert_existing_objects_matched().expect_partial()
          checkpoint.save_counter.assign(older.save_counter)
        restored_rate = np.float32(optimizer.learning_rate.numpy())
    initial_epoch = int(epoch.numpy())

    if initial_epoch >= settings.run.epochs:  # nothing trains, so nothing is written
      if verbose:
        print(
          f"{model_dir}: already trained for {initial_epoch} epochs "
          f"(asked {settings.run.epochs}); nothing to do"
        )
      return TrainResult(model, {}, initial_epoch)
    if checkpoint_path and restored_rate != np.float32(settings.run.learning_rate):
      # A new rate is applied (RESUME_RULES), not lost to the checkpoint's.
      optimizer.learning_rate = settings.run.learning_rate
      if verbose:
        print(
          f"learning rate {restored_rate:g} -> {settings.run.learning_rate:g} from epoch "
          f"{initial_epoch + 1} (recorded in {TRAIN_FILE} and {FLAGS_HISTORY_FILE})"
        )
    if chief:
      tf.io.gfile.makedirs(model_dir)  # where model_dir_lock has not (a multi_worker run)
      write_run_files(model_dir, model_config, settings, flags_text, initial_epoch)
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
    callbacks = [WarmUp(settings.fixed.warmup_epochs), StopOnDivergence(saver)]
    callbacks += _recalibration(model, data, settings)  # before the saver: it saves the result
    callbacks.append(saver)
    if chief:  # summaries need no other worker: only the chief writes them
      callbacks.append(keras.callbacks.TensorBoard(log_dir, histogram_freq=0, write_graph=False))
      callbacks.append(
        summaries.Summaries(log_dir, model_config, settings, probe_batch(data, settings))
      )
    callbacks.append(stopper)  # last: a signal at an epoch's end lets it be saved and logged
    try:
      with stopper.handling_signals():
        history = model.fit(
          _train_stream(data, settings, initial_epoch, input_threads),
          epochs=settings.run.epochs,
          initial_epoch=initial_epoch,
          steps_per_epoch=data.steps_per_epoch(settings.fixed.batch_size),
          validation_data=_held_out(data, settings, input_threads),
          validation_freq=settings.run.eval_every,
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


def probe_batch(data: DataSet, settings: TrainConfig) -> Optional[Dict[str, tf.Tensor]]:
  """Up to PROBE_EXAMPLES held-out examples (every modality): what the TensorBoard pictures
  and the latent histogram are drawn from; None for a data set without a held-out split."""
  if not data.has_held_out():
    return None
  split = data.held_out_split()
  n = min(PROBE_EXAMPLES, data.num_examples(split) or PROBE_EXAMPLES)
  known = n if data.num_examples(split) else None  # a pipeline's: its first batch
  return next(iter(data.eval_dataset(split, n, seed=settings.fixed.data_seed, num_examples=known)))
