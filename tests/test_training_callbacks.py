"""The training loop's callbacks (jmvae_tf/training/callbacks.py): the KL warm-up, a checkpoint after
every epoch (never of non-finite weights, a full disk one line), stopping on a non-finite loss
and on SIGINT/SIGTERM.

Tiny models (short_runs: latent_dim 4, batches of 8, 3 steps an epoch) on random binary data,
trained with driver.train as runners.train trains them; one subprocess test of the runner
is in test_runners_train.py.
"""

import errno
import fcntl
import json
import os
import signal
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from short_runs import MODEL, STEPS, all_finite, checkpoints_on_disk, ckpt, file_bytes, fit

from jmvae_tf.core import options
from jmvae_tf.models import config
from jmvae_tf.training import callbacks, driver, run_dir

# --- the KL warm-up ----------------------------------------------------------------------


def test_warmup_weight_rises_linearly():
  assert [callbacks.warmup_weight(e, 4) for e in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
  assert callbacks.warmup_weight(0, 0) == 1.0


def test_warmup_note_only_for_runs_that_end_inside_the_warm_up():
  assert "weight 0" in callbacks.warmup_note(1, 5)  # --epochs=1: no KL term at all
  assert "ends at epoch 3 with weight 0.4" in callbacks.warmup_note(3, 5)
  assert "weight 0.8" in callbacks.warmup_note(5, 5)
  assert callbacks.warmup_note(6, 5) is None  # epoch 6 trains with weight 1
  assert callbacks.warmup_note(1, 0) is None


# --- divergence ------------------------------------------------------------------------


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
  with pytest.raises(callbacks.TrainingDiverged) as diverged:
    fit(tmp_path, epochs=4, poison=(3, 2))
  message = str(diverged.value)
  assert "\n" not in message
  assert "epoch 3, step 2 of 3" in message, message
  assert "non-finite loss term nll_image=nan" in message and "loss=nan" in message, message
  assert f"the last good checkpoint {ckpt(tmp_path, 2)} is kept" in message, message
  # nothing of epoch 3 was saved; what was saved is finite and is what resumes and restores
  assert checkpoints_on_disk(tmp_path) == ["ckpt-1", "ckpt-2"]
  assert all(all_finite(ckpt(tmp_path, n)) for n in (1, 2))
  assert run_dir.find_checkpoint(str(tmp_path)) == ckpt(tmp_path, 2)
  run_dir.load(str(tmp_path))
  # the run's lock went with it
  with open(tmp_path / run_dir.LOCK_FILE) as f:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_divergence_seen_at_the_end_of_an_execution_names_the_steps_it_ran():
  """With steps_per_execution > 1 the callbacks see every few steps: the message names the
  range since the last they saw, and the loss terms before the total."""
  saver = types.SimpleNamespace(describe_last_good=lambda: "no checkpoint was saved")
  stop = callbacks.StopOnDivergence(saver)
  stop.set_params({"steps": 10})
  stop.on_epoch_begin(1)
  stop.on_train_batch_end(1, {"loss": 3.0, "nll_image": 2.0})
  with pytest.raises(callbacks.TrainingDiverged) as diverged:
    stop.on_train_batch_end(4, {"loss": np.float32(np.inf), "nll_label": np.nan, "kl": 1.0})
  assert str(diverged.value) == (
    "training diverged in epoch 2, steps 3-5 of 10: non-finite loss term nll_label=nan, "
    "loss=inf; stopped, no checkpoint was saved (a lower --learning_rate or a --clipnorm "
    "may help)"
  )


def test_non_finite_weights_are_never_saved(tmp_path):
  """The loss of an epoch's last step is computed before its update: the weights are
  checked again before the save."""
  fit(tmp_path, epochs=1)
  model = config.build_model(MODEL)
  model.compile(optimizer=driver.make_optimizer(options.TrainConfig.make()))
  epoch = tf.Variable(0, dtype=tf.int64)
  manager = tf.train.CheckpointManager(
    run_dir.make_checkpoint(model, model.optimizer, epoch),
    str(tmp_path / run_dir.CKPT_DIR),
    max_to_keep=3,
  )
  saver = callbacks.CheckpointEveryEpoch(manager, epoch, str(tmp_path), ckpt(tmp_path, 1))
  saver.set_model(model)
  kernel = model.trainable_variables[0]
  kernel.assign(tf.fill(kernel.shape, np.inf))
  with pytest.raises(callbacks.TrainingDiverged, match="epoch 2: its weights are not all finite"):
    saver.on_epoch_end(1)
  assert checkpoints_on_disk(tmp_path) == ["ckpt-1"]


# --- a full disk during a save -------------------------------------------------------------


@pytest.mark.parametrize(
  "error",
  [
    tf.errors.ResourceExhaustedError(None, None, "ckpt-2: No space left on device"),
    OSError(errno.ENOSPC, "No space left on device"),
  ],
  ids=["tf", "os"],
)
def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_earlier_checkpoints(
  tmp_path, monkeypatch, error
):
  fit(tmp_path, epochs=1)
  first = file_bytes(tmp_path, 1)

  def save_until_the_disk_is_full(self, checkpoint_number=None, **kw):
    partial = Path(self.directory) / f"ckpt-{checkpoint_number}_temp"
    partial.mkdir()
    (partial / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 100)
    (Path(self.directory) / f"ckpt-{checkpoint_number}.data-00000-of-00001").write_bytes(b"\0")
    raise error

  monkeypatch.setattr(tf.train.CheckpointManager, "save", save_until_the_disk_is_full)
  with pytest.raises(run_dir.RunDirError) as full:
    fit(tmp_path, epochs=2)
  message = str(full.value)
  assert "\n" not in message
  assert "could not save the checkpoint of epoch 2" in message and "disk full" in message
  assert f"the last good checkpoint {ckpt(tmp_path, 1)} is kept" in message
  assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
    "checkpoint",
    "ckpt-1.data-00000-of-00001",
    "ckpt-1.index",
  ]
  assert file_bytes(tmp_path, 1) == first


# --- SIGINT / SIGTERM -----------------------------------------------------------------------


def _signal_at(monkeypatch, signum, epoch, step):
  """Sends `signum` to this process at the end of `step` of `epoch` (1-based), from a
  callback that runs before StopOnSignal's; records the handler then in effect."""
  seen = {}

  def on_train_batch_end(self, batch, logs=None):
    if (self._epoch_now, batch + 1) == (epoch, step):
      os.kill(os.getpid(), signum)
      seen["handler after the first signal"] = signal.getsignal(signum)

  def on_epoch_begin(self, e, logs=None):
    self._epoch_now = e + 1
    self.model.kl_weight.assign(callbacks.warmup_weight(e, self.warmup_epochs))

  monkeypatch.setattr(callbacks.WarmUp, "on_train_batch_end", on_train_batch_end, raising=False)
  monkeypatch.setattr(callbacks.WarmUp, "on_epoch_begin", on_epoch_begin)
  return seen


def _weights(model):
  return [v.numpy() for v in model.variables]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_epoch_stops_at_the_next_step_and_the_rerun_resumes_exactly(
  tmp_path, monkeypatch, signum
):
  straight = fit(tmp_path / "straight", epochs=3)
  handler = signal.getsignal(signum)
  seen = _signal_at(monkeypatch, signum, epoch=2, step=2)
  with pytest.raises(callbacks.TrainingInterrupted) as stopped:
    fit(tmp_path / "run", epochs=3)
  name = signal.Signals(signum).name
  assert stopped.value.signum == signum
  assert str(stopped.value) == (
    f"stopped by {name} in epoch 2 after step 2 of 3; the last good checkpoint "
    f"{ckpt(tmp_path / 'run', 1)} is kept: a rerun with this --model_dir starts at epoch 2"
  )
  assert seen["handler after the first signal"] == signal.SIG_DFL  # a second one kills
  assert signal.getsignal(signum) == handler  # the caller's handler is back
  assert checkpoints_on_disk(tmp_path / "run") == ["ckpt-1"]
  monkeypatch.undo()
  resumed = fit(tmp_path / "run", epochs=3)  # the lock went with the interrupted run
  assert resumed.initial_epoch == 1
  # the same settings trained every checkpoint: one record, from epoch 0, and no history
  assert json.loads((tmp_path / "run" / run_dir.TRAIN_FILE).read_text())["start_epoch"] == 0
  assert not (tmp_path / "run" / run_dir.FLAGS_HISTORY_FILE).exists()
  for a, b in zip(_weights(straight.model), _weights(resumed.model)):
    np.testing.assert_array_equal(a, b)  # bit for bit


def test_a_signal_in_the_last_step_of_an_epoch_saves_that_epoch_first(tmp_path, monkeypatch):
  _signal_at(monkeypatch, signal.SIGTERM, epoch=2, step=STEPS)
  with pytest.raises(callbacks.TrainingInterrupted, match="at the end of epoch 2; .*epoch 3$"):
    fit(tmp_path, epochs=4)
  assert checkpoints_on_disk(tmp_path) == ["ckpt-1", "ckpt-2"]
