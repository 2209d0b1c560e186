"""Training driver: strategy, model directory, checkpoints, warm-up, summaries.

The runner parses flags and calls `train`; everything that can be tested lives
here. Layout of a model directory:

  run.json            the ModelConfig (rebuilds the model for evaluation/export)
  train.json          the TrainConfig of the latest run here, and the epoch it started from
  flags.txt           the resolved flags of that run, usable as a --flagfile
  flags_history.txt   the flags of the earlier runs here, each with the epochs it trained
  ckpt/               tf.train checkpoints: model, optimiser, epoch (one per epoch)
  logs/train, logs/validation   TensorBoard events
  .lock               held (flock) by the one training run writing here: "host pid"

Nothing is lost under faults: a loss or weight that turns NaN/inf stops the run
(TrainingDiverged) before anything non-finite is saved; a missing or truncated
checkpoint is skipped for the newest readable one (find_checkpoint); a second run on
the same directory is refused while the first holds the lock. A resumed run may change
only what config.RESUME_RULES allows (a new learning rate is applied to the restored
optimiser); SIGINT/SIGTERM stop training at the next step boundary (TrainingInterrupted),
the finished epochs saved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import itertools
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from jmvae_tf import hardware, summaries
from jmvae_tf.config import RESUME_RULES, ModelConfig, TrainConfig, build_model
from jmvae_tf.models import MultimodalVAE

RUN_FILE = "run.json"
TRAIN_FILE = "train.json"
FLAGS_FILE = "flags.txt"
FLAGS_HISTORY_FILE = "flags_history.txt"
CKPT_DIR = "ckpt"
LOG_DIR = "logs"
LOCK_FILE = ".lock"
STRATEGIES = ("auto", "mirrored", "default", "one_device", "multi_worker")


class RunDirError(ValueError):
  """The model directory cannot be used for this run (e.g. it holds another model)."""


class TrainingDiverged(ValueError):
  """A loss term or a weight became NaN or infinite; nothing non-finite was saved."""


class TrainingInterrupted(Exception):
  """SIGINT or SIGTERM stopped training; the epochs finished before it are saved."""

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
  """auto: MirroredStrategy over the GPUs when there are several, else no distribution
  strategy (one device pays nothing for mirroring; the speed issue measured a
  MirroredStrategy over one CPU at about half the speed); mirrored: all visible GPUs (one
  CPU device when there is none), forced."""
  if name == "auto":
    name = machine_defaults().strategy
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


def check_recalibration(train_config: TrainConfig, strategy=None):
  """Refuses train_config.recalibrate_batchnorm where training would run on several
  replicas (`strategy`, or the one train_config.strategy makes here), before anything is
  read or written."""
  if not train_config.recalibrate_batchnorm:
    return
  if strategy is not None:
    several = strategy.num_replicas_in_sync > 1
    what = f"{type(strategy).__name__} has {strategy.num_replicas_in_sync} replicas"
  else:
    name = train_config.strategy
    if name == "auto":
      name = machine_defaults(train_config.jit_compile).strategy
    several = name in ("mirrored", "multi_worker")
    what = f"strategy {train_config.strategy!r} is {name!r} here"
  if several:
    raise ValueError(
      f"recalibrate_batchnorm runs on one replica, but {what}; train with "
      "--strategy=one_device to use it"
    )


def machine_defaults(jit_compile: bool = False) -> hardware.Defaults:
  """The speed defaults for the devices this process sees (jmvae_tf/hardware.py)."""
  num_gpus = len(tf.config.list_physical_devices("GPU"))
  return hardware.decide(hardware.describe_cpu(), num_gpus, jit_compile)


def configure_cpu_threads(
  intra_op: int = -1, inter_op: int = 0, jit_compile: bool = False
) -> tuple:
  """Sets TensorFlow's CPU thread pools; call before TensorFlow runs any op.

  intra_op = -1 (auto): the machine's default (hardware.decide: with no GPU, half the
  usable cores; the JMVAE family's networks are independent branches, and at batch
  100 running them side by side on the inter-op pool beat splitting each small matmul
  over all cores, benchmarks/README.md; under XLA, `jit_compile`, TF's default, since
  a compiled step runs on the intra-op pool alone). 0 keeps TF's default.
  """
  if intra_op < 0:
    intra_op = machine_defaults(jit_compile).intra_op_threads
  if intra_op:
    tf.config.threading.set_intra_op_parallelism_threads(intra_op)
  if inter_op:
    tf.config.threading.set_inter_op_parallelism_threads(inter_op)
  return intra_op, inter_op


def input_threads(flag: int = -1) -> int:
  """The input pipeline's threads: `flag`, or for -1 (auto) the machine's default
  (hardware.decide: with no GPU, a private pool of half the cores)."""
  return machine_defaults().input_threads if flag < 0 else flag


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
  input_threads_flag: int = -1,
  input_threads: int = 0,
) -> str:
  """runners.train's start-up line: the machine and every speed setting this run uses
  (hardware.settings_line); warns on stderr when the precision asked for will be slower
  here than float32 (bfloat16 without bfloat16 instructions)."""
  cpu = hardware.describe_cpu()
  num_gpus = len(tf.config.list_physical_devices("GPU"))
  warning = hardware.precision_warning(cpu, num_gpus, train_config.precision)
  if warning:
    _warn(warning)
  strategy = train_config.strategy
  if strategy == "auto":
    strategy = hardware.decide(cpu, num_gpus).strategy
  return hardware.settings_line(
    cpu,
    num_gpus,
    intra_op,
    intra_op_flag < 0,
    input_threads,
    input_threads_flag < 0,
    train_config.jit_compile,
    strategy,
    train_config.strategy == "auto",
    train_config.precision,
  )


def warmup_weight(epoch: int, warmup_epochs: int) -> float:
  """KL weight in `epoch` (0-based): rises linearly from 0 to 1 over warmup_epochs."""
  if warmup_epochs <= 0:
    return 1.0
  return min(1.0, epoch / warmup_epochs)


def warmup_note(epochs: int, warmup_epochs: int) -> Optional[str]:
  """One line for a run that ends before the KL weight reaches 1 (else None): with the paper's
  schedule epoch 1 has no KL term at all, which surprises anyone trying `--epochs=1`."""
  if warmup_epochs <= 0 or epochs > warmup_epochs:
    return None
  last = warmup_weight(epochs - 1, warmup_epochs)
  return (
    f"note: the KL weight rises from 0 in epoch 1 to 1 in epoch {warmup_epochs + 1} "
    f"(--warmup_epochs={warmup_epochs}); this run ends at epoch {epochs} with weight {last:.3g}"
  )


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
  path = os.path.join(model_dir, LOCK_FILE)
  try:  # the first write to model_dir: what the system refuses here is one line
    tf.io.gfile.makedirs(model_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  except (OSError, tf.errors.OpError) as e:
    raise RunDirError(
      f"--model_dir={model_dir} cannot be created or written ({_first_line(e)}); "
      "choose a writable place"
    ) from None
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


def check_writable(directory: str, flag: str = "--model_dir"):
  """A local directory, or where it would be created (the nearest of its parents that
  exists), must be a directory this process may write; else a RunDirError naming `flag`
  (a flag such as "--output_dir", or what the directory is when no flag named it).
  Runners call it before long work, so its results are not lost at the end. Root passes
  os.access everywhere but on read-only file systems: what it cannot write there is
  found when it writes (model_dir_lock, for training)."""
  if "://" in directory:
    return
  named = f"{flag}={directory}" if flag.startswith("--") else f"{flag} {directory}"
  path = os.path.abspath(directory)
  while not os.path.lexists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  if path == os.path.abspath(directory) and not os.path.isdir(path):
    raise RunDirError(f"{named} exists and is not a directory")
  if path != os.path.abspath(directory) and not os.path.isdir(path):
    raise RunDirError(f"{named} cannot be created: {path} is not a directory")
  if os.path.isdir(path) and not os.access(path, os.W_OK | os.X_OK):
    raise RunDirError(f"{named} cannot be written: {path} is read-only for this user")


def checkpoint_epoch(prefix: str) -> int:
  """The number of finished epochs saved in checkpoint `prefix` (make_checkpoint's)."""
  return int(tf.train.load_checkpoint(prefix).get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))


def read_train_record(model_dir: str) -> Optional[tuple]:
  """train.json as (TrainConfig of the latest run here, epochs finished when it started);
  None where there is none (a directory from before train.json was written)."""
  path = os.path.join(model_dir, TRAIN_FILE)
  if not tf.io.gfile.exists(path):
    return None
  try:
    with tf.io.gfile.GFile(path) as f:
      record = json.loads(f.read())
    return TrainConfig.from_dict(record["train_config"]), int(record["start_epoch"])
  except (ValueError, KeyError, TypeError) as e:
    raise RunDirError(f"{path} is unreadable ({_first_line(e)}); move it away to resume") from None


def check_resume(model_dir: str, checkpoint: str, train_config: TrainConfig):
  """A RunDirError naming each setting that config.RESUME_RULES keeps fixed and that
  `train_config` changes, when resuming from `checkpoint` would train (a finished run
  asked for no more epochs trains nothing, and is left alone)."""
  record = read_train_record(model_dir)
  if record is None or checkpoint_epoch(checkpoint) >= train_config.epochs:
    return
  conflicts = record[0].resume_conflicts(train_config)
  if conflicts:
    detail = ", ".join(f"--{k} {a!r} vs {b!r}" for k, (a, b) in conflicts.items())
    may = ", ".join(f"--{k}" for k, (may_change, _) in RESUME_RULES.items() if may_change)
    raise RunDirError(
      f"--model_dir={model_dir} cannot resume with other data or optimisation settings "
      f"({detail}; saved vs asked): keep them or use another --model_dir (a resumed run "
      f"may change {may})"
    )


def check_model_dir(
  model_dir: str, config: ModelConfig, train_config: Optional[TrainConfig] = None
) -> Optional[str]:
  """Fails, touching nothing, if `model_dir` cannot be written, holds a run of a different
  model, checkpoints none of which is readable, or (given `train_config`) a run that this
  one may not resume (check_resume).

  Returns the checkpoint to resume from (None for a fresh run): find_checkpoint's.
  """
  if tf.io.gfile.exists(model_dir) and not tf.io.gfile.isdir(model_dir):
    raise RunDirError(f"--model_dir={model_dir} exists and is not a directory")
  check_writable(model_dir)
  checkpoint = latest_checkpoint(model_dir)
  saved = read_model_config(model_dir)
  if saved is not None and checkpoint is not None and saved != config:
    detail = ", ".join(f"--{k} {a!r} vs {b!r}" for k, (a, b) in saved.differences(config).items())
    raise RunDirError(
      f"--model_dir={model_dir} holds a checkpoint of a different model "
      f"({detail}; saved vs asked); use another --model_dir"
    )
  if checkpoint is not None and train_config is not None:
    check_resume(model_dir, checkpoint, train_config)
  return checkpoint


def _disk_full(error: BaseException) -> bool:
  if isinstance(error, OSError):
    return error.errno in (errno.ENOSPC, errno.EDQUOT)
  return isinstance(error, tf.errors.ResourceExhaustedError) and any(
    words in str(error) for words in ("No space left", "quota")
  )


def write_whole(path: str, content: str | bytes, unchanged: str = "the previous file is unchanged"):
  """Replaces `path` by `content` (str or bytes) whole (written aside, then renamed), so a
  full disk or a crash leaves the previous file; a failure is a RunDirError naming the
  file, then `unchanged` (what the user still has)."""
  path = os.fspath(path)
  temp = path + ".tmp"
  try:
    with tf.io.gfile.GFile(temp, "wb" if isinstance(content, bytes) else "w") as f:
      f.write(content)
    tf.io.gfile.rename(temp, path, overwrite=True)
  except (OSError, tf.errors.OpError) as e:
    with contextlib.suppress(OSError, tf.errors.OpError):
      tf.io.gfile.remove(temp)
    full = "the disk is full; " if _disk_full(e) else ""
    raise RunDirError(f"could not write {path} ({_first_line(e)}): {full}{unchanged}") from None


# What a failed write of a run file leaves the user (write_run_files).
RUN_FILES_KEPT = "it and the checkpoints are as they were"
# ... and of an output that may be new (a figure, an edited face).
OUTPUT_KEPT = "any earlier file of that name is unchanged"


def _read_text(path: str) -> Optional[str]:
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return f.read()


def write_run_files(
  model_dir: str,
  model_config: ModelConfig,
  train_config: TrainConfig,
  flags_text: Optional[str],
  start_epoch: int,
):
  """Writes run.json, train.json and flags.txt (when `flags_text` is given) for a run that
  trains on from `start_epoch` finished epochs, each replaced whole (write_whole).

  When the settings change and the run before trained epochs that remain (its start <
  `start_epoch`), its flags.txt is first appended to flags_history.txt under a line
  "# epochs A-B", so the files always say what trained the checkpoints beside them.
  """
  previous = read_train_record(model_dir)
  # Where train.json is missing (a directory from before it was written) the flags there
  # trained from epoch 0.
  previous_start = previous[1] if previous is not None else 0
  flags_path = os.path.join(model_dir, FLAGS_FILE)
  old_flags = _read_text(flags_path)
  same = (previous is None or previous[0] == train_config) and (
    flags_text is None or old_flags == flags_text
  )
  if same and previous_start <= start_epoch:
    start_epoch = previous_start  # the same settings go on training from where they started
  elif not same and previous_start < start_epoch and old_flags is not None:
    history_path = os.path.join(model_dir, FLAGS_HISTORY_FILE)
    history = _read_text(history_path) or ""
    block = f"# epochs {previous_start + 1}-{start_epoch}\n{old_flags}"
    if not history.endswith(block):  # not already moved by an attempt that failed after
      write_whole(history_path, history + block, RUN_FILES_KEPT)
  # train.json before flags.txt: a rerun after a failure between them sees the new record
  # and the old flags, and moves nothing to the history twice.
  record = {"start_epoch": start_epoch, "train_config": train_config.as_dict()}
  write_whole(
    os.path.join(model_dir, TRAIN_FILE),
    json.dumps(record, indent=2, sort_keys=True),
    RUN_FILES_KEPT,
  )
  if flags_text is not None:
    write_whole(flags_path, flags_text, RUN_FILES_KEPT)
  write_whole(os.path.join(model_dir, RUN_FILE), model_config.to_json(), RUN_FILES_KEPT)


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


# --- BatchNorm statistics ----------------------------------------------------------------


def batchnorm_layers(model: keras.Model) -> List[keras.layers.BatchNormalization]:
  return [m for m in model.submodules if isinstance(m, keras.layers.BatchNormalization)]


def recalibrate_batchnorm(model: MultimodalVAE, batches: Iterable[Dict], seed: int = 0) -> int:
  """Sets every BatchNorm layer's moving mean and variance to the average of its batch
  statistics over `batches` (training-mode passes of the model's loss terms, the inputs
  the layers normalise in training; a layer used more than once a pass, as the VAE-GAN's
  decoder and discriminator are, averages every use). The exponential moving averages
  that inference uses (Keras' momentum 0.99) still hold about 5% of their initial values
  after 300 steps and lag the weights, so short runs evaluate much blurrier than they
  train (docs/CELEBA.md). No weight changes. The variances are those Keras' moving averages
  take: the batch variance for dense inputs, with Bessel's correction for fused (image)
  ones. Runs eagerly. Returns how many batches were read (0 with no BatchNorm layer)."""
  if not tf.executing_eagerly():
    raise RuntimeError("recalibrate_batchnorm counts each layer's uses eagerly; call it eagerly")
  layers = batchnorm_layers(model)
  if not layers:
    return 0
  momenta = [layer.momentum for layer in layers]

  def averaging(layer):
    uses = [0]

    def call(*args, **kwargs):  # the moving average of n values with weight 1/n: their mean
      if tf.executing_eagerly():  # not Keras' symbolic calls that infer output shapes
        uses[0] += 1
        layer.momentum = (uses[0] - 1) / uses[0]
      return type(layer).call(layer, *args, **kwargs)

    return call

  statistics = [v for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
  earlier = [v.numpy() for v in statistics]
  for v in statistics:  # the first use's update, v - (v - value) * 1, is then exactly value
    v.assign(tf.zeros_like(v))
  count = 0
  for layer in layers:  # Keras' __call__ looks up layer.call each time; not tracked
    layer.__dict__["call"] = averaging(layer)
  try:
    for count, batch in enumerate(batches, start=1):
      step_seed = tf.random.experimental.stateless_fold_in(
        tf.constant([seed, 0x5EED], tf.int64), count
      )
      model.loss_terms(batch, step_seed, training=True)
  finally:
    for layer, momentum in zip(layers, momenta):
      del layer.__dict__["call"]
      layer.momentum = momentum
    if not count:  # no batch read: the statistics as they were
      for v, value in zip(statistics, earlier):
        v.assign(value)
  return count


# --- callbacks ---------------------------------------------------------------------------


class RecalibrateBatchNorm(keras.callbacks.Callback):
  """After the last epoch, before it is saved: recalibrate_batchnorm over the first
  `num_batches` batches (at most an epoch's) that `batches_fn()` gives. Put it before the
  saver."""

  def __init__(self, batches_fn: Callable[[], Iterable[Dict]], num_batches: int, seed: int):
    super().__init__()
    self.batches_fn, self.num_batches, self.seed = batches_fn, num_batches, seed
    self.done = ""

  def on_epoch_end(self, epoch, logs=None):
    params = self.params or {}
    if epoch + 1 == params.get("epochs"):
      started = time.monotonic()
      num_batches = min(self.num_batches, params.get("steps") or self.num_batches)
      batches = itertools.islice(iter(self.batches_fn()), num_batches)
      read = recalibrate_batchnorm(self.model, batches, self.seed)
      self.done = (
        f"BatchNorm statistics recomputed over {read} batches of epoch {epoch + 1} "
        f"({time.monotonic() - started:.1f} s)"
      )

  def on_train_end(self, logs=None):  # after Keras' own line for the epoch
    if self.done and (self.params or {}).get("verbose"):
      print(self.done, flush=True)


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
  `kept_dir`: the model dir whose checkpoints the user keeps, where this process saves into
  a directory of its own that goes (a worker other than the chief, which saves the same
  checkpoints); `last_good` then names the chief's.
  """

  def __init__(
    self,
    manager: tf.train.CheckpointManager,
    epoch: tf.Variable,
    model_dir: str,
    last_good: Optional[str] = None,
    kept_dir: Optional[str] = None,
  ):
    super().__init__()
    self.manager, self.epoch, self.model_dir = manager, epoch, model_dir
    self.last_good, self.kept_dir = last_good, kept_dir

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
      saved = self.manager.save(checkpoint_number=epoch + 1)
      self.last_good = (
        os.path.join(self.kept_dir, CKPT_DIR, os.path.basename(saved)) if self.kept_dir else saved
      )
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


class StopOnSignal(keras.callbacks.Callback):
  """The first SIGINT or SIGTERM during `fit` (inside `handling_signals`) stops training
  at the next step boundary the callbacks see, the end of a steps_per_execution chunk
  (about a second at batch 100 here), with TrainingInterrupted naming the epoch a rerun
  resumes from; a signal in an epoch's last chunk lets that epoch be saved first, so put
  this callback after the saver. The epochs saved resume exactly: the data are a function
  of (seed, epoch, step). A second signal kills at once (its default action restored).
  """

  SIGNALS = (signal.SIGINT, signal.SIGTERM)

  def __init__(self, saver: CheckpointEveryEpoch):
    super().__init__()
    self.saver = saver
    self.signum: Optional[int] = None
    self._epoch = 0

  @contextlib.contextmanager
  def handling_signals(self):
    if threading.current_thread() is not threading.main_thread():
      yield  # only the main thread may set handlers: the process's stay as they are
      return
    previous = {s: signal.getsignal(s) for s in self.SIGNALS}
    for s in self.SIGNALS:
      signal.signal(s, self._on_signal)
    try:
      yield
    finally:
      for s, handler in previous.items():
        signal.signal(s, handler)

  def _on_signal(self, signum, frame):
    self.signum = signum
    for s in self.SIGNALS:
      signal.signal(s, signal.SIG_DFL)

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    steps = (self.params or {}).get("steps")
    if self.signum is not None and (steps is None or batch + 1 < steps):
      self._stop(
        f"in epoch {self._epoch + 1} after step {batch + 1}" + (f" of {steps}" if steps else "")
      )

  def on_epoch_end(self, epoch, logs=None):
    if self.signum is not None:
      self._stop(f"at the end of epoch {epoch + 1}")

  def _stop(self, where: str):
    finished = int(self.saver.epoch.numpy())
    raise TrainingInterrupted(
      f"stopped by {signal.Signals(self.signum).name} {where}; "
      f"{self.saver.describe_last_good()}: a rerun with this --model_dir starts at epoch "
      f"{finished + 1}",
      self.signum,
    )


# --- the driver --------------------------------------------------------------------------


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
  input_threads: int = 0,
) -> TrainResult:
  """Trains (or resumes) `model_config` in `model_dir` up to `train_config.epochs` epochs.

  train_dataset_fn(start_epoch) returns an infinite dataset of global batches that
  starts at `start_epoch`, so a resumed run reads exactly what it would have read.
  `input_threads` (with_input_threads) runs it and eval_dataset on a private thread pool.

  Every check (check_model_dir: another model, unreadable checkpoints, a resume that
  changes what config.RESUME_RULES fixes) runs before anything is written. The run holds
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
    if train_config.strategy != "multi_worker" or (strategy is not None and is_chief(strategy))
    else contextlib.nullcontext()
  )
  with lock, contextlib.ExitStack() as stack:
    # Under the lock: the directory is now ours, so look again and clear interrupted saves.
    checkpoint_path = check_model_dir(model_dir, model_config, train_config)
    strategy = strategy or make_strategy(train_config.strategy)
    chief = is_chief(strategy)
    for path in remove_partial_saves(model_dir) if chief else []:
      _warn(f"removed {path}, left by an interrupted save")
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

    if initial_epoch >= train_config.epochs:  # nothing trains, so nothing is written
      if verbose:
        print(
          f"{model_dir}: already trained for {initial_epoch} epochs "
          f"(asked {train_config.epochs}); nothing to do"
        )
      return TrainResult(model, {}, initial_epoch)
    if checkpoint_path and restored_rate != np.float32(train_config.learning_rate):
      # A new rate is applied (RESUME_RULES), not lost to the checkpoint's.
      optimizer.learning_rate = train_config.learning_rate
      if verbose:
        print(
          f"learning rate {restored_rate:g} -> {train_config.learning_rate:g} from epoch "
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
    callbacks = [WarmUp(train_config.warmup_epochs), StopOnDivergence(saver)]
    if train_config.recalibrate_batchnorm and not batchnorm_layers(model):
      _warn(f"recalibrate_batchnorm: {model_config.model} has no BatchNorm layer; ignored")
    elif train_config.recalibrate_batchnorm:  # before the saver: the last checkpoint holds it
      callbacks.append(
        RecalibrateBatchNorm(
          lambda: train_dataset_fn(train_config.epochs - 1),  # the last epoch's batches
          train_config.recalibrate_batchnorm,
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
          epochs=train_config.epochs,
          initial_epoch=initial_epoch,
          steps_per_epoch=steps_per_epoch,
          validation_data=shard_by_data(with_input_threads(eval_dataset, input_threads)),
          validation_freq=train_config.eval_every,
          callbacks=callbacks,
          verbose=verbose,
        )
    except (tf.errors.ResourceExhaustedError, OSError) as e:  # e.g. TensorBoard's events
      if not _disk_full(e):
        raise
      raise RunDirError(
        f"could not write under {model_dir} ({_first_line(e)}): is the disk full? "
        f"{saver.describe_last_good()}"
      ) from None
  return TrainResult(model, history.history, initial_epoch)
