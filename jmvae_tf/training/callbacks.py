"""The training loop's callbacks: the KL warm-up, a checkpoint after every epoch (never of
non-finite weights), stopping on a non-finite loss or on SIGINT/SIGTERM at the next step
boundary, and BatchNorm recalibration after the last epoch.

Nothing is lost under faults: a loss or weight that turns NaN/inf stops the run
(TrainingDiverged) before anything non-finite is saved; a save that fails for want of space
is a RunDirError with its partial files removed; SIGINT/SIGTERM stop training at the next step
boundary (TrainingInterrupted), the finished epochs saved.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import signal
import threading
import time
from typing import Callable, Dict, Iterable, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from jmvae_tf.core.files import first_line
from jmvae_tf.training.batchnorm import recalibrate_batchnorm
from jmvae_tf.training.run_dir import (
  CKPT_DIR,
  RunDirError,
  describe_names,
  nonfinite_variables,
  remove_partial_saves,
)


class TrainingDiverged(ValueError):
  """A loss term or a weight became NaN or infinite; nothing non-finite was saved."""


class TrainingInterrupted(Exception):
  """SIGINT or SIGTERM stopped training; the epochs finished before it are saved."""

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum


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
        f"({describe_names(bad)}); not saved, {self.describe_last_good()}"
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
        f"({first_line(e)}): is the disk full? Partial files removed, "
        f"{self.describe_last_good()}"
      ) from None


def kept(saver: Optional[CheckpointEveryEpoch]) -> str:
  """What the user still has after a stop: the saver's last good checkpoint, or nothing."""
  return saver.describe_last_good() if saver is not None else "nothing was saved (no model_dir)"


class StopOnDivergence(keras.callbacks.Callback):
  """Stops training at the first train batch whose loss terms are not all finite.

  Reads Keras' `logs` (the epoch's running means, already fetched for the other
  callbacks), so it costs nothing more; with steps_per_execution > 1 it learns of a
  step only at the end of its execution, and names the range of steps run.
  """

  def __init__(self, saver: Optional[CheckpointEveryEpoch]):
    super().__init__()
    self.saver = saver  # None: training in memory, nothing saved
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
      + f": non-finite loss term {terms}; stopped, {kept(self.saver)} "
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
