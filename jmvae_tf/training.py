"""Training driver: strategy, model directory, checkpoints, warm-up, summaries.

The runner parses flags and calls `train`; everything that can be tested lives
here. Layout of a model directory:

  run.json            the ModelConfig (rebuilds the model for evaluation/export)
  flags.txt           the resolved flags, usable as a --flagfile
  ckpt/               tf.train checkpoints: model, optimiser, epoch (one per epoch)
  logs/train, logs/validation   TensorBoard events
  .lock               held (flock) by the one training run writing here: "host pid"

Nothing is lost under faults: a loss or weight that turns NaN/inf stops the run
(TrainingDiverged) before anything non-finite is saved; a missing or truncated
checkpoint is skipped for the newest readable one (find_checkpoint); a second run on
the same directory is refused while the first holds the lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import re
import socket
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from jmvae_tf.config import ModelConfig, TrainConfig, build_model
from jmvae_tf.models import MultimodalVAE

RUN_FILE = "run.json"
FLAGS_FILE = "flags.txt"
CKPT_DIR = "ckpt"
LOG_DIR = "logs"
LOCK_FILE = ".lock"
STRATEGIES = ("auto", "mirrored", "default", "one_device", "multi_worker")


class RunDirError(ValueError):
  """The model directory cannot be used for this run (e.g. it holds another model)."""


class TrainingDiverged(ValueError):
  """A loss term or a weight became NaN or infinite; nothing non-finite was saved."""


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
  """auto: MirroredStrategy over the GPUs when there are several, else no distribution
  strategy (one device pays nothing for mirroring; the speed issue measured a
  MirroredStrategy over one CPU at about half the speed); mirrored: all visible GPUs (one
  CPU device when there is none), forced."""
  if name == "auto":
    gpus = tf.config.list_logical_devices("GPU")
    name = "mirrored" if len(gpus) > 1 else "default"
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
  return keras.optimizers.legacy.Adam(
    train_config.learning_rate,
    epsilon=train_config.adam_epsilon,
    global_clipnorm=train_config.clipnorm,
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


# --- model directory --------------------------------------------------------------------


def read_model_config(model_dir: str) -> Optional[ModelConfig]:
  path = os.path.join(model_dir, RUN_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return ModelConfig.from_json(f.read())


_WARNED = set()


def _warn(message: str):
  """One line on stderr, once per process (the runner checks a directory before train does)."""
  if message not in _WARNED:
    _WARNED.add(message)
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _first_line(error: BaseException, limit: int = 200) -> str:
  text = (str(error).strip().splitlines() or [""])[0]
  text = f"{type(error).__name__}: {text}" if text else type(error).__name__
  return text if len(text) <= limit else text[: limit - 3] + "..."


def _checkpoint_number(name: str) -> int:
  match = re.search(r"-(\d+)$", name)
  return int(match.group(1)) if match else -1


def checkpoint_candidates(model_dir: str) -> List[str]:
  """The checkpoint prefixes under MODEL_DIR/ckpt, newest first: those the `checkpoint`
  state file lists and those with files on disk (an .index or a .data shard), readable
  or not. State file paths are taken relative to ckpt/, so a moved directory works."""
  ckpt_dir = os.path.join(model_dir, CKPT_DIR)
  if not tf.io.gfile.isdir(ckpt_dir):
    return []
  names = set()
  try:
    state = tf.train.get_checkpoint_state(ckpt_dir)
  except (tf.errors.OpError, ValueError):  # an unreadable state file: the files on disk remain
    state = None
  if state is not None:
    listed = list(state.all_model_checkpoint_paths) + [state.model_checkpoint_path]
    names.update(os.path.basename(p) for p in listed if p)
  for path in tf.io.gfile.glob(os.path.join(ckpt_dir, "*.index")):
    names.add(os.path.basename(path)[: -len(".index")])
  for path in tf.io.gfile.glob(os.path.join(ckpt_dir, "*.data-*")):
    names.add(os.path.basename(path).split(".data-")[0])
  ordered = sorted(names, key=lambda n: (_checkpoint_number(n), n), reverse=True)
  return [os.path.join(ckpt_dir, n) for n in ordered]


_READABLE: Dict[tuple, Optional[str]] = {}


def checkpoint_problem(prefix: str) -> Optional[str]:
  """None when every tensor of checkpoint `prefix` can be read, else why not (one line).

  Reads the whole checkpoint (a truncated .data file shows only when its tensors are
  read); the answer is remembered while the checkpoint's files stay the same files (inode,
  size and time, which a save, writing new files and renaming them, changes).
  """
  stats = []
  for path in sorted(tf.io.gfile.glob(prefix + ".*")):
    try:
      if "://" in path:
        stat = tf.io.gfile.stat(path)
        stats.append((path, stat.length, stat.mtime_nsec))
      else:
        stat = os.stat(path)
        stats.append((path, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    except (OSError, tf.errors.OpError):
      stats.append((path, None))
  key = (prefix, tuple(stats))
  if key not in _READABLE:
    if not tf.io.gfile.exists(prefix + ".index"):
      problem = "no .index file"
    else:
      problem = None
      try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
          reader.get_tensor(name)
      except Exception as e:  # OpError (data loss), IndexError (a truncated .data), ...
        problem = _first_line(e)
    _READABLE[key] = problem
  return _READABLE[key]


def find_checkpoint(model_dir: str) -> Optional[str]:
  """The newest readable checkpoint under MODEL_DIR/ckpt (None when there is none at all).

  Unreadable newer ones (a missing .index, a truncated .data) are skipped with a one-line
  warning naming them; a directory whose checkpoints are all unreadable is a RunDirError,
  never a fresh start. Resuming (check_model_dir, train) and restore_model use it.
  """
  skipped = []
  for prefix in checkpoint_candidates(model_dir):
    problem = checkpoint_problem(prefix)
    if problem is None:
      if skipped:
        _warn(
          f"{model_dir}: skipped unreadable checkpoint(s) {'; '.join(skipped)}; "
          f"using {os.path.basename(prefix)}"
        )
      return prefix
    skipped.append(f"{os.path.basename(prefix)} ({problem})")
  if skipped:
    raise RunDirError(
      f"--model_dir={model_dir} has no readable checkpoint under {CKPT_DIR}/: "
      f"{'; '.join(skipped)}; move {os.path.join(model_dir, CKPT_DIR)} away to start afresh"
    )
  return None


def latest_checkpoint(model_dir: str) -> Optional[str]:
  """The checkpoint to resume or restore from: find_checkpoint's newest readable one."""
  return find_checkpoint(model_dir)


def remove_partial_saves(model_dir: str, number: Optional[int] = None) -> List[str]:
  """Removes what interrupted saves left under ckpt/: TensorFlow's in-progress
  `ckpt-N_temp*` directories and `checkpoint.tmp*` state files; with `number`, also the
  files of ckpt-`number` if that checkpoint is unreadable. Returns the paths removed."""
  ckpt_dir = os.path.join(model_dir, CKPT_DIR)
  if not tf.io.gfile.isdir(ckpt_dir):
    return []
  removed = []
  for path in tf.io.gfile.glob(os.path.join(ckpt_dir, "*_temp*")):
    if tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
      removed.append(path)
  leftovers = tf.io.gfile.glob(os.path.join(ckpt_dir, "checkpoint.tmp*"))
  if number is not None:
    prefix = os.path.join(ckpt_dir, f"ckpt-{number}")
    if checkpoint_problem(prefix) is not None:
      leftovers += tf.io.gfile.glob(prefix + ".*")
  for path in leftovers:
    tf.io.gfile.remove(path)
    removed.append(path)
  return removed


def nonfinite_variables(variables: Sequence[tf.Variable]) -> List[str]:
  """Names of the floating-point variables holding a NaN or an infinity."""
  return [
    v.name
    for v in variables
    if v.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(v)))
  ]


def _names(names: Sequence[str], limit: int = 3) -> str:
  more = f" and {len(names) - limit} more" if len(names) > limit else ""
  return ", ".join(names[:limit]) + more


@contextlib.contextmanager
def model_dir_lock(model_dir: str):
  """Holds MODEL_DIR/.lock (flock, exclusive) for the block: one writer per directory.

  Another holder makes this a RunDirError naming it ("host pid"), with nothing written.
  The kernel drops the lock when the process ends, however it ends; the file stays.
  Only local directories can be locked: remote ones (gs://...) are not.
  """
  if "://" in model_dir:
    yield
    return
  tf.io.gfile.makedirs(model_dir)
  path = os.path.join(model_dir, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise
      owner = os.pread(fd, 256, 0).decode("utf-8", "replace").strip() or "owner unknown"
      raise RunDirError(
        f"--model_dir={model_dir} is in use by another training run ({owner}, holding "
        f"{path}); wait for it to finish or use another --model_dir"
      ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{socket.gethostname()} {os.getpid()}\n".encode(), 0)
    yield
  finally:
    os.close(fd)  # releases the lock


def check_model_dir(model_dir: str, config: ModelConfig) -> Optional[str]:
  """Fails, touching nothing, if `model_dir` holds a run of a different model, or
  checkpoints none of which is readable.

  Returns the checkpoint to resume from (None for a fresh run): find_checkpoint's.
  """
  if tf.io.gfile.exists(model_dir) and not tf.io.gfile.isdir(model_dir):
    raise RunDirError(f"--model_dir={model_dir} exists and is not a directory")
  checkpoint = latest_checkpoint(model_dir)
  saved = read_model_config(model_dir)
  if saved is not None and checkpoint is not None and saved != config:
    detail = ", ".join(f"--{k} {a!r} vs {b!r}" for k, (a, b) in saved.differences(config).items())
    raise RunDirError(
      f"--model_dir={model_dir} holds a checkpoint of a different model "
      f"({detail}; saved vs asked); use another --model_dir"
    )
  return checkpoint


def make_checkpoint(model: MultimodalVAE, optimizer, epoch: tf.Variable) -> tf.train.Checkpoint:
  return tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch)


def restore_model(model_dir: str, checkpoint: Optional[str] = None) -> MultimodalVAE:
  """Rebuilds the model saved in `model_dir` and loads its weights (for evaluation/export)."""
  config = read_model_config(model_dir)
  if config is None:
    raise RunDirError(
      f"--model_dir={model_dir} has no {RUN_FILE}: not a model directory of runners.train"
    )
  if checkpoint:
    problem = checkpoint_problem(checkpoint)
    if problem is not None:
      raise RunDirError(f"checkpoint {checkpoint} is unreadable: {problem}")
  else:
    checkpoint = find_checkpoint(model_dir)
  if checkpoint is None:
    raise RunDirError(f"--model_dir={model_dir} has no checkpoint under {CKPT_DIR}/")
  model = build_model(config)
  tf.train.Checkpoint(model=model).restore(
    checkpoint
  ).expect_partial().assert_existing_objects_matched()
  bad = nonfinite_variables(model.variables)
  if bad:
    raise RunDirError(
      f"checkpoint {checkpoint} holds non-finite weights ({_names(bad)}): its run diverged; "
      "use an earlier checkpoint or train again"
    )
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
  """Saves model, optimiser and the number of finished epochs after every epoch.

  Weights that are not all finite are never saved (TrainingDiverged, the earlier
  checkpoints stay); a save that fails for want of space is a RunDirError, with its
  partial files removed. `last_good` is the newest checkpoint known to be sound.
  """

  def __init__(
    self,
    manager: tf.train.CheckpointManager,
    epoch: tf.Variable,
    model_dir: str,
    last_good: Optional[str] = None,
  ):
    super().__init__()
    self.manager, self.epoch, self.model_dir = manager, epoch, model_dir
    self.last_good = last_good

  def describe_last_good(self) -> str:
    if self.last_good is None:
      return "no checkpoint was saved"
    return f"the last good checkpoint {self.last_good} is kept"

  def on_epoch_end(self, epoch, logs=None):
    bad = nonfinite_variables(list(self.model.variables) + list(self.model.optimizer.variables()))
    if bad:
      raise TrainingDiverged(
        f"training diverged in epoch {epoch + 1}: its weights are not all finite "
        f"({_names(bad)}); not saved, {self.describe_last_good()}"
      )
    self.epoch.assign(epoch + 1)
    try:
      self.last_good = self.manager.save(checkpoint_number=epoch + 1)
    except (tf.errors.ResourceExhaustedError, OSError) as e:
      if isinstance(e, OSError) and e.errno != errno.ENOSPC:
        raise
      remove_partial_saves(self.model_dir, number=epoch + 1)
      raise RunDirError(
        f"could not save the checkpoint of epoch {epoch + 1} in {self.model_dir} "
        f"({_first_line(e)}): is the disk full? Partial files removed, "
        f"{self.describe_last_good()}"
      ) from None


class StopOnDivergence(keras.callbacks.Callback):
  """Stops training at the first train batch whose loss terms are not all finite.

  Reads Keras' `logs` (the epoch's running means, already fetched for the other
  callbacks), so it costs nothing more; with steps_per_execution > 1 it learns of a
  step only at the end of its execution, and names the range of steps run.
  """

  def __init__(self, saver: CheckpointEveryEpoch):
    super().__init__()
    self.saver = saver
    self._epoch, self._done = 0, 0

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch, self._done = epoch, 0

  def on_train_batch_end(self, batch, logs=None):
    first, self._done = self._done + 1, batch + 1
    bad = {}
    for name, value in (logs or {}).items():
      value = np.asarray(value)
      if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        bad[name] = value
    if not bad:
      return
    # The terms first, the total (which any of them makes non-finite) last.
    names = sorted(bad, key=lambda n: n == "loss")
    terms = ", ".join(f"{n}={float(np.ravel(bad[n])[0])}" for n in names)
    steps = f"step {batch + 1}" if first >= batch + 1 else f"steps {first}-{batch + 1}"
    total = (self.params or {}).get("steps")
    raise TrainingDiverged(
      f"training diverged in epoch {self._epoch + 1}, {steps}"
      + (f" of {total}" if total else "")
      + f": non-finite loss term {terms}; stopped, {self.saver.describe_last_good()} "
      "(a lower --learning_rate or a --clipnorm may help)"
    )


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
      tf.summary.scalar(
        "learning_rate", lr(self.model.optimizer.iterations) if callable(lr) else lr
      )
      if self._last is not None and self._last > self._start:
        tf.summary.scalar(
          "examples_per_second", self._steps * self.batch_size / (self._last - self._start)
        )
      mean, _ = self.model.encode(self.probe_batch, training=False)
      tf.summary.histogram("latent_mean", mean)
    self.writer.flush()


# --- the driver --------------------------------------------------------------------------


@dataclasses.dataclass
class TrainResult:
  model: MultimodalVAE
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
) -> TrainResult:
  """Trains (or resumes) `model_config` in `model_dir` up to `train_config.epochs` epochs.

  train_dataset_fn(start_epoch) returns an infinite dataset of global batches that
  starts at `start_epoch`, so a resumed run reads exactly what it would have read.

  The run holds MODEL_DIR/.lock throughout (model_dir_lock); a loss term or weight that
  turns non-finite raises TrainingDiverged, with no non-finite checkpoint saved.
  """
  check_model_dir(model_dir, model_config)  # refuses another model, touching nothing
  # The workers of one multi-worker run share the directory: only other runs are locked out.
  lock = (
    contextlib.nullcontext()
    if train_config.strategy == "multi_worker"
    else model_dir_lock(model_dir)
  )
  with lock:
    return _train(
      model_config,
      train_config,
      model_dir,
      train_dataset_fn,
      steps_per_epoch,
      eval_dataset,
      probe_batch,
      flags_text,
      verbose,
      strategy,
    )


def _train(
  model_config,
  train_config,
  model_dir,
  train_dataset_fn,
  steps_per_epoch,
  eval_dataset,
  probe_batch,
  flags_text,
  verbose,
  strategy,
) -> TrainResult:
  # Under the lock: the directory is now ours, so look again and clear interrupted saves.
  checkpoint_path = check_model_dir(model_dir, model_config)
  for path in remove_partial_saves(model_dir):
    _warn(f"removed {path}, left by an interrupted save")
  strategy = strategy or make_strategy(train_config.strategy)
  keras.utils.set_random_seed(model_config.seed)  # reproducible initial weights
  with strategy.scope():
    with precision_policy(train_config.precision):
      model = build_model(model_config)
    optimizer = make_optimizer(train_config)
    model.compile(
      optimizer=optimizer,
      jit_compile=train_config.jit_compile,
      steps_per_execution=train_config.steps_per_execution,
    )
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
      print(
        f"{model_dir}: already trained for {initial_epoch} epochs "
        f"(asked {train_config.epochs}); nothing to do"
      )
    return TrainResult(model, {}, initial_epoch)
  if verbose and initial_epoch:
    print(f"Resuming from {checkpoint_path} at epoch {initial_epoch + 1}")

  log_dir = os.path.join(model_dir, LOG_DIR)
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, CKPT_DIR), max_to_keep=3)
  saver = CheckpointEveryEpoch(manager, epoch, model_dir, last_good=checkpoint_path)
  callbacks = [
    WarmUp(train_config.warmup_epochs),
    StopOnDivergence(saver),
    saver,
    keras.callbacks.TensorBoard(log_dir, histogram_freq=0, write_graph=False),
  ]
  if probe_batch is not None:
    callbacks.append(Summaries(log_dir, train_config.batch_size, probe_batch))
  history = model.fit(
    train_dataset_fn(initial_epoch),
    epochs=train_config.epochs,
    initial_epoch=initial_epoch,
    steps_per_epoch=steps_per_epoch,
    validation_data=eval_dataset,
    validation_freq=train_config.eval_every,
    callbacks=callbacks,
    verbose=verbose,
  )
  return TrainResult(model, history.history, initial_epoch)
