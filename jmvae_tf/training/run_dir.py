"""The model directory: its layout, its run files, its checkpoints and its lock.

  run.json            the ModelConfig (rebuilds the model for evaluation/export)
  train.json          the TrainConfig of the latest run here, and the epoch it started from
  flags.txt           the resolved flags of that run, usable as a --flagfile
  flags_history.txt   the flags of the earlier runs here, each with the epochs it trained
  ckpt/               tf.train checkpoints: model, optimiser, epoch (one per epoch)
  logs/train, logs/validation   TensorBoard events
  .lock               held (flock) by the one training run writing here: "host pid"

Every runner that reads a trained model goes through `load_run` (the run's config, training
record and newest readable checkpoint, each checked, or one RunDirError saying what is wrong)
and `Run.restore`. Training checks a directory with `check_model_dir` (another model,
unreadable checkpoints, a resume that changes a fixed setting: TrainConfig.fixed) before
anything is written, holds `model_dir_lock` while it writes, and records the run with
`write_run_files`. A missing or truncated checkpoint is skipped for the newest readable one
(find_checkpoint), with a warning; a directory whose checkpoints are all unreadable is an
error, never a fresh start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import re
import socket
from typing import Dict, List, NamedTuple, Optional, Sequence

import tensorflow as tf

from jmvae_tf.core.data import DataError, training_fingerprint
from jmvae_tf.core.files import (
  WriteError,
  check_writable,
  first_line,
  read_text,
  warn_once,
  write_whole,
)
from jmvae_tf.core.options import RunSettings, TrainConfig
from jmvae_tf.core.plugins import PluginError
from jmvae_tf.models.config import ModelConfig, build_model

RUN_FILE = "run.json"
TRAIN_FILE = "train.json"
FLAGS_FILE = "flags.txt"
FLAGS_HISTORY_FILE = "flags_history.txt"
CKPT_DIR = "ckpt"
LOG_DIR = "logs"
LOCK_FILE = ".lock"


class RunDirError(ValueError):
  """The model directory cannot be used for this run (e.g. it holds another model)."""


class TrainRecord(NamedTuple):
  """train.json: the settings of the latest run here and the epochs finished when it began."""

  train_config: TrainConfig
  start_epoch: int


def read_model_config(model_dir: str) -> Optional[ModelConfig]:
  """run.json's ModelConfig, or None where there is no run.json; a RunDirError naming the file
  and what is wrong where it cannot be read (not JSON, a field missing or of the wrong
  type), before any model is built from it."""
  path = os.path.join(model_dir, RUN_FILE)
  text = read_text(path)
  if text is None:
    return None
  try:
    return ModelConfig.from_json(text)
  except PluginError as e:  # a plug-in missing here, not a damaged file
    raise RunDirError(f"--model_dir={model_dir}: {e}") from None
  except json.JSONDecodeError as e:
    problem = f"is not JSON ({e})"
  except ValueError as e:
    problem = f"cannot be read: {e}"
  except (TypeError, KeyError) as e:
    problem = f"cannot be read: {first_line(e, 300)}"
  raise RunDirError(
    f"--model_dir={model_dir}: {RUN_FILE} {problem}; it must be the run.json runners.train "
    "wrote (restore it, or move the directory away)"
  )


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
        problem = first_line(e)
    _READABLE[key] = problem
  return _READABLE[key]


def find_checkpoint(model_dir: str) -> Optional[str]:
  """The newest readable checkpoint under MODEL_DIR/ckpt (None when there is none at all).

  Unreadable newer ones (a missing .index, a truncated .data) are skipped with a one-line
  warning naming them; a directory whose checkpoints are all unreadable is a RunDirError,
  never a fresh start. Resuming (check_model_dir, train) and load use it.
  """
  skipped = []
  for prefix in checkpoint_candidates(model_dir):
    problem = checkpoint_problem(prefix)
    if problem is None:
      if skipped:
        warn_once(
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


def describe_names(names: Sequence[str], limit: int = 3) -> str:
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
      f"--model_dir={model_dir} cannot be created or written ({first_line(e)}); "
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


def checkpoint_epoch(prefix: str) -> int:
  """The number of finished epochs saved in checkpoint `prefix` (make_checkpoint's)."""
  return int(tf.train.load_checkpoint(prefix).get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))


def read_train_record(model_dir: str) -> Optional[TrainRecord]:
  """train.json's TrainRecord (the TrainConfig of the latest run here, the epochs finished
  when it started); None where there is none (a directory from before train.json was
  written)."""
  path = os.path.join(model_dir, TRAIN_FILE)
  if not tf.io.gfile.exists(path):
    return None
  try:
    with tf.io.gfile.GFile(path) as f:
      record = json.loads(f.read())
    return TrainRecord(TrainConfig.from_dict(record["train_config"]), int(record["start_epoch"]))
  except (ValueError, KeyError, TypeError) as e:
    raise RunDirError(f"{path} is unreadable ({first_line(e)}); move it away to resume") from None


def check_resume(model_dir: str, checkpoint: str, train_config: TrainConfig):
  """A RunDirError naming each fixed setting (TrainConfig.fixed) that `train_config`
  changes, when resuming from `checkpoint` would train (a finished run asked for no more
  epochs trains nothing, and is left alone)."""
  record = read_train_record(model_dir)
  if record is None or checkpoint_epoch(checkpoint) >= train_config.run.epochs:
    return
  conflicts = record[0].resume_conflicts(train_config)
  data = conflicts.pop("data_fingerprint", None)
  if data:
    raise RunDirError(
      f"--model_dir={model_dir} was trained on other data: the training examples read now "
      f"differ from those its checkpoints were trained on (fingerprint {data[1]} vs "
      f"{data[0]} recorded in {TRAIN_FILE}); is --data_dir another data set's? Use the same "
      "files (a moved copy of them resumes) or another --model_dir"
    )
  if conflicts:
    detail = ", ".join(f"--{k} {a!r} vs {b!r}" for k, (a, b) in conflicts.items())
    may = ", ".join(f"--{k}" for k in RunSettings.field_names())
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
  one may not resume (check_resume). Training calls it before anything is written, and again
  under the lock, where another run may have written meanwhile.

  Returns the checkpoint to resume from (None for a fresh run): find_checkpoint's.
  """
  if tf.io.gfile.exists(model_dir) and not tf.io.gfile.isdir(model_dir):
    raise RunDirError(f"--model_dir={model_dir} exists and is not a directory")
  try:
    check_writable(model_dir)
  except WriteError as e:  # a directory that cannot be written cannot hold this run
    raise RunDirError(str(e)) from None
  checkpoint = find_checkpoint(model_dir)
  saved = read_model_config(model_dir)
  if saved is not None and checkpoint is not None and saved != config:
    detail = ", ".join(f"--{k} {a!r} vs {b!r}" for k, (a, b) in saved.differences(config).items())
    raise RunDirError(
      f"--model_dir={model_dir} holds a checkpoint of a different model "
      f"({detail}; saved vs asked); use another --model_dir"
    )
  if saved is not None and checkpoint is not None:
    check_checkpoint_config(model_dir, checkpoint, saved)
  if checkpoint is not None and train_config is not None:
    check_resume(model_dir, checkpoint, train_config)
  return checkpoint


RUN_FILES_KEPT = "it and the checkpoints are as they were"


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
  old_flags = read_text(flags_path)
  same = (previous is None or previous[0] == train_config) and (
    flags_text is None or old_flags == flags_text
  )
  if same and previous_start <= start_epoch:
    start_epoch = previous_start  # the same settings go on training from where they started
  elif not same and previous_start < start_epoch and old_flags is not None:
    history_path = os.path.join(model_dir, FLAGS_HISTORY_FILE)
    history = read_text(history_path) or ""
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


def make_checkpoint(
  model, optimizer, epoch: tf.Variable, run_config: Optional[tf.Variable] = None
) -> tf.train.Checkpoint:
  """What a checkpoint holds: the model, the optimizer, the epochs finished and (given) the
  run's config (run.json's text, `config_variable`), so that a run.json that does not match
  its checkpoint is refused and a lost one can be restored (restore_run_json)."""
  if run_config is None:
    return tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch)
  return tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch, run_config=run_config)


CONFIG_TENSOR = "run_config/.ATTRIBUTES/VARIABLE_VALUE"


def config_variable(config: ModelConfig) -> tf.Variable:
  """run.json's text as a string variable, for make_checkpoint (made outside any
  distribution strategy's scope: one copy, on the host)."""
  with tf.init_scope(), tf.device("/cpu:0"):
    return tf.Variable(config.to_json(), dtype=tf.string, trainable=False, name="run_config")


def checkpoint_config_text(checkpoint: str) -> Optional[str]:
  """The run.json text `checkpoint` was trained with; None for a checkpoint written before
  checkpoints carried it."""
  reader = tf.train.load_checkpoint(checkpoint)
  if not reader.has_tensor(CONFIG_TENSOR):
    return None
  return reader.get_tensor(CONFIG_TENSOR).decode()


def check_checkpoint_config(model_dir: str, checkpoint: str, config: ModelConfig) -> None:
  """A RunDirError naming each field where run.json (`config`) differs from the config
  `checkpoint` was trained with (a hand-edited run.json would build other networks or serve
  another likelihood); a line saying it cannot be cross-checked for an older checkpoint."""
  text = checkpoint_config_text(checkpoint)
  if text is None:
    warn_once(
      f"{checkpoint} was written before checkpoints carried their config: "
      f"{RUN_FILE} cannot be cross-checked against it"
    )
    return
  try:
    trained = ModelConfig.from_json(text)
  except (ValueError, KeyError, TypeError) as e:
    raise RunDirError(f"{checkpoint}: its config cannot be read ({first_line(e)})") from None
  if trained != config:

    def short(value) -> str:
      text = json.dumps(value)
      return text if len(text) <= 60 else text[:57] + "..."

    detail = "; ".join(
      f"{k}: {short(a)} in {RUN_FILE}, {short(b)} in the checkpoint"
      for k, (a, b) in config.differences(trained).items()
    )
    raise RunDirError(
      f"--model_dir={model_dir}: {RUN_FILE} does not match the config its checkpoint "
      f"{checkpoint} was trained with ({detail}); restore it from the checkpoint: "
      f"python -m runners.export --model_dir={model_dir} --restore_run_json"
    )


def restore_run_json(model_dir: str, checkpoint: Optional[str] = None) -> str:
  """Writes run.json again from the config `checkpoint` (default: the newest readable one)
  carries, replacing a lost, damaged or edited one whole; returns its path. A RunDirError
  where no checkpoint carries one."""
  checkpoint = checkpoint or find_checkpoint(model_dir)
  if checkpoint is None:
    raise RunDirError(f"--model_dir={model_dir} has no checkpoint under {CKPT_DIR}/")
  text = checkpoint_config_text(checkpoint)
  if text is None:
    raise RunDirError(
      f"{checkpoint} was written before checkpoints carried their config: {RUN_FILE} cannot "
      "be restored from it"
    )
  path = os.path.join(model_dir, RUN_FILE)
  write_whole(path, ModelConfig.from_json(text).to_json())
  return path


@dataclasses.dataclass(frozen=True)
class Run:
  """A trained model's directory, checked (load_run): its config, its training record (None
  for a directory from before train.json) and its newest readable checkpoint."""

  model_dir: str
  config: ModelConfig
  record: Optional[TrainRecord]
  checkpoint: str

  @property
  def epoch(self) -> int:
    """The epochs its checkpoint holds."""
    return checkpoint_epoch(self.checkpoint)

  def describe(self) -> str:
    """The checkpoint read and the epochs it holds, for a runner's first line."""
    return f"{self.checkpoint} (epoch {self.epoch} of {self.config.model})"

  @property
  def data_options(self) -> tuple:
    """The data set options the run was trained with ("key=value", as --data_options)."""
    return self.record.train_config.fixed.data_options if self.record else ()

  def check_text(self, data, where: str = "the data") -> None:
    """Makes `data` read each of the run's text modalities with the run's vocabulary (its
    captions tokenised as in training: a vocabulary rebuilt from other training examples
    orders its words otherwise); a DataError (one line) where the data set cannot
    (`DataSet.use_vocabulary`) and its own differs."""
    ours = {m.name: m for m in data.modalities}
    for m in self.config.modalities:
      if m.vocabulary is None or m.name not in ours or ours[m.name] == m:
        continue
      if not data.use_vocabulary(m) or {n.name: n for n in data.modalities}[m.name] != m:
        theirs = ours[m.name]
        raise DataError(
          f"{where}: its {m.name!r} captions give another vocabulary ({theirs.shape[1]} tokens, "
          f"{theirs.shape[0]} positions) than {self.model_dir} was trained with "
          f"({m.shape[1]}, {m.shape[0]}): the run learnt it from other training captions "
          "(fewer, with --num_train or --validation?), and this data set cannot read with "
          "another vocabulary than its own"
        )

  def check_data(self, data, where: str = "the data") -> None:
    """A DataError (one line) where `data` is not what the run was trained on: its fingerprint
    of the first num_train training examples differs from the one train.json recorded. A run
    that recorded none (older, or trained on a pipeline) is not checked. Consumers that read
    data for a run (evaluate, embed, figures, edit) call it before any work, as resume does."""
    fixed = self.record.train_config.fixed if self.record else None
    if fixed is None or not fixed.data_fingerprint:
      return
    now = training_fingerprint(data, fixed.num_train)
    if now is not None and now != fixed.data_fingerprint:
      first = f"first {fixed.num_train} " if fixed.num_train else ""
      raise DataError(
        f"{where} is not the data {self.model_dir} was trained on: its {first}training "
        f"examples' fingerprint is {now}, the run recorded {fixed.data_fingerprint} "
        f"({data.name}{', ' + ','.join(self.data_options) if self.data_options else ''}); "
        "is it another data set's files?"
      )

  def restore(self):
    """The model, with the weights of the run's checkpoint."""
    checkpoint = self.checkpoint
    model = build_model(self.config)
    tf.train.Checkpoint(model=model).restore(
      checkpoint
    ).expect_partial().assert_existing_objects_matched()
    bad = nonfinite_variables(model.variables)
    if bad:
      raise RunDirError(
        f"checkpoint {checkpoint} holds non-finite weights ({describe_names(bad)}): its run "
        "diverged; use an earlier checkpoint or train again"
      )
    return model


def load_run(model_dir: str, checkpoint: Optional[str] = None) -> Run:
  """The run in `model_dir` with `checkpoint` (default: its newest readable one), or a
  RunDirError saying why it cannot be read: no run.json, an unreadable one, no readable
  checkpoint, an unreadable `checkpoint`. What every runner that reads a trained model uses."""
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
  check_checkpoint_config(model_dir, checkpoint, config)
  return Run(model_dir, config, read_train_record(model_dir), checkpoint)


def load(model_dir: str, checkpoint: Optional[str] = None):
  """The model trained in `model_dir`, with the weights of `checkpoint` (default: its newest
  readable one): load_run(model_dir, checkpoint).restore(). A RunDirError says in one line
  what is wrong with the directory (no run.json, no readable checkpoint, a plug-in missing)."""
  return load_run(model_dir, checkpoint).restore()
