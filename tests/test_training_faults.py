"""Nothing lost under faults: divergence, broken checkpoints, a full disk, two runs at once,
a resume with other settings, an unwritable model_dir, SIGINT/SIGTERM.

Tiny models (latent_dim 4, batches of 8, 3 steps an epoch) on random binary data, trained
with training.train as runners.train trains them; one subprocess test of the runner.
"""

import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from model_configs import mnist_config
from tiny_runs import read_only_dir, write_fake_mnist

from jmvae_tf import callbacks, config, files, options, run_dir, training

ROOT = Path(__file__).resolve().parents[1]
BATCH, STEPS = 8, 3
MODEL = mnist_config("jmvae", latent_dim=4)


def _data(epochs, poison=None):
  """epochs * STEPS batches in a fixed order; `poison` = (epoch, step), both 1-based: that
  batch's images are infinite, so its loss is not finite."""
  rng = np.random.default_rng(0)
  n = epochs * STEPS * BATCH
  images = (rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32)
  if poison is not None:
    start = ((poison[0] - 1) * STEPS + poison[1] - 1) * BATCH
    images[start : start + BATCH] = np.inf
  return {"image": images, "label": np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]}


def fit(model_dir, epochs, poison=None, flags_text=None, **train_kw):
  data = _data(max(epochs, 4), poison)
  kw = dict(
    epochs=epochs, batch_size=BATCH, warmup_epochs=0, steps_per_execution=1, strategy="default"
  )
  kw.update(train_kw)
  return training.train(
    MODEL,
    options.TrainConfig.make(**kw),
    str(model_dir),
    lambda start: (
      tf.data.Dataset.from_tensor_slices(data).batch(BATCH).skip(start * STEPS).repeat()
    ),
    steps_per_epoch=STEPS,
    flags_text=flags_text,
    verbose=0,
  )


def ckpt(model_dir, n):
  return str(Path(model_dir) / run_dir.CKPT_DIR / f"ckpt-{n}")


def all_finite(prefix):
  reader = tf.train.load_checkpoint(prefix)
  dtypes = reader.get_variable_to_dtype_map()
  return all(np.isfinite(reader.get_tensor(k)).all() for k, d in dtypes.items() if d.is_floating)


def checkpoints_on_disk(model_dir):
  return sorted(
    p.name[: -len(".index")] for p in (Path(model_dir) / run_dir.CKPT_DIR).glob("*.index")
  )


def snapshot(directory):
  return {
    os.path.join(r, f): (os.path.getsize(os.path.join(r, f)), os.path.getmtime(os.path.join(r, f)))
    for r, _, fs in os.walk(directory)
    for f in fs
  }


def file_bytes(model_dir, n):
  return {p.name: p.read_bytes() for p in (Path(model_dir) / "ckpt").glob(f"ckpt-{n}.*")}


def truncate_data(model_dir, n):
  (data,) = (Path(model_dir) / "ckpt").glob(f"ckpt-{n}.data-*")
  content = data.read_bytes()
  data.write_bytes(content[: len(content) // 2])


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
  run_dir.restore_model(str(tmp_path))
  # the run's lock went with it
  with open(tmp_path / run_dir.LOCK_FILE) as f:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_non_finite_weights_are_never_saved(tmp_path):
  """The loss of an epoch's last step is computed before its update: the weights are
  checked again before the save."""
  fit(tmp_path, epochs=1)
  model = config.build_model(MODEL)
  model.compile(optimizer=training.make_optimizer(options.TrainConfig.make()))
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


def test_restore_model_refuses_a_checkpoint_with_non_finite_weights(tmp_path):
  fit(tmp_path, epochs=1)
  model = run_dir.restore_model(str(tmp_path))
  kernel = model.trainable_variables[0]
  kernel.assign(tf.fill(kernel.shape, np.nan))
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(model=model), str(tmp_path / run_dir.CKPT_DIR), max_to_keep=3
  )
  assert manager.save(checkpoint_number=2).endswith("ckpt-2")
  with pytest.raises(run_dir.RunDirError, match="ckpt-2 holds non-finite weights"):
    run_dir.restore_model(str(tmp_path))
  run_dir.restore_model(str(tmp_path), ckpt(tmp_path, 1))  # an earlier one is fine


def test_runner_exits_1_with_one_line_when_the_loss_is_not_finite(tmp_path):
  (tmp_path / "mnist").mkdir()
  data_dir = write_fake_mnist(tmp_path / "mnist", num_train=200, num_test=100)
  model_dir = tmp_path / "run"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  args = [
    "--flagfile=configs/mnist_jmvae_kl.flags",
    f"--data_dir={data_dir}",
    f"--model_dir={model_dir}",
    "--num_train=200",
    "--epochs=2",
    "--steps_per_execution=1",
    "--learning_rate=1e4",
    "--verbose=2",
  ]
  result = subprocess.run(
    [sys.executable, "-m", "runners.train", *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 1, result.stderr
  assert "Traceback" not in result.stderr, result.stderr
  last = [line for line in result.stderr.splitlines() if line.strip()][-1]
  assert last.startswith("error: training diverged in epoch"), last
  assert "non-finite loss term" in last and "loss=nan" in last, last
  for prefix in checkpoints_on_disk(model_dir):
    assert all_finite(str(model_dir / "ckpt" / prefix))


# --- checkpoints you can trust -------------------------------------------------------------


def test_missing_index_resumes_from_the_one_before(tmp_path, capsys):
  fit(tmp_path, epochs=3)
  older = {n: file_bytes(tmp_path, n) for n in (1, 2)}
  os.remove(ckpt(tmp_path, 3) + ".index")
  capsys.readouterr()
  assert run_dir.find_checkpoint(str(tmp_path)) == ckpt(tmp_path, 2)
  warning = capsys.readouterr().err
  assert "skipped unreadable checkpoint(s) ckpt-3 (no .index file); using ckpt-2" in warning
  result = fit(tmp_path, epochs=3)
  assert result.initial_epoch == 2  # not a fresh start over the intact checkpoints
  assert {n: file_bytes(tmp_path, n) for n in (1, 2)} == older
  assert run_dir.find_checkpoint(str(tmp_path)) == ckpt(tmp_path, 3)
  assert run_dir.checkpoint_problem(ckpt(tmp_path, 3)) is None


def test_truncated_data_falls_back_in_training_and_in_restore_model(tmp_path, capsys):
  fit(tmp_path, epochs=2)
  first = file_bytes(tmp_path, 1)
  truncate_data(tmp_path, 2)
  capsys.readouterr()
  model = run_dir.restore_model(str(tmp_path))
  assert "ckpt-2 (IndexError" in capsys.readouterr().err
  reference = run_dir.restore_model(str(tmp_path), ckpt(tmp_path, 1))
  for a, b in zip(model.variables, reference.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  with pytest.raises(run_dir.RunDirError, match="ckpt-2 is unreadable: IndexError"):
    run_dir.restore_model(str(tmp_path), ckpt(tmp_path, 2))  # asked for by name: no fallback
  assert run_dir.check_model_dir(str(tmp_path), MODEL) == ckpt(tmp_path, 1)
  result = fit(tmp_path, epochs=2)
  assert result.initial_epoch == 1
  assert file_bytes(tmp_path, 1) == first
  assert run_dir.find_checkpoint(str(tmp_path)) == ckpt(tmp_path, 2)  # saved again, whole


def test_a_directory_of_unreadable_checkpoints_is_an_error_not_a_fresh_start(tmp_path):
  fit(tmp_path, epochs=2)
  truncate_data(tmp_path, 2)
  os.remove(ckpt(tmp_path, 1) + ".index")
  before = snapshot(tmp_path)
  expected = "no readable checkpoint under ckpt/: ckpt-2 .IndexError.*; ckpt-1 .no .index file."
  for attempt in (
    lambda: run_dir.check_model_dir(str(tmp_path), MODEL),
    lambda: run_dir.restore_model(str(tmp_path)),
    lambda: fit(tmp_path, epochs=3),
  ):
    with pytest.raises(run_dir.RunDirError, match=expected):
      attempt()
  assert snapshot(tmp_path) == before


def test_a_partial_save_left_by_a_crash_is_removed_before_training(tmp_path, capsys):
  fit(tmp_path, epochs=1)
  partial = tmp_path / "ckpt" / "ckpt-2_temp_0123abcd"
  partial.mkdir()
  (partial / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 100)
  assert run_dir.check_model_dir(str(tmp_path), MODEL) == ckpt(tmp_path, 1)
  assert partial.exists()  # checking touches nothing
  result = fit(tmp_path, epochs=2)
  assert result.initial_epoch == 1
  assert not partial.exists()
  assert f"removed {partial}" in capsys.readouterr().err
  assert checkpoints_on_disk(tmp_path) == ["ckpt-1", "ckpt-2"]


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


# --- one writer per model_dir --------------------------------------------------------------


def test_a_second_run_on_a_directory_in_use_is_refused_and_writes_nothing(tmp_path):
  fit(tmp_path, epochs=1)
  owner = (tmp_path / run_dir.LOCK_FILE).read_text().split()
  assert owner == [socket.gethostname(), str(os.getpid())]
  with open(tmp_path / run_dir.LOCK_FILE, "r+") as held:  # another run, as the kernel sees it
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    held.truncate(0)
    held.write("otherhost 4242\n")
    held.flush()
    before = snapshot(tmp_path)
    with pytest.raises(
      run_dir.RunDirError, match="in use by another training run .otherhost 4242, holding"
    ):
      fit(tmp_path, epochs=2)
    assert snapshot(tmp_path) == before
  # once the holder is gone the run goes ahead, and lets go of the lock when it returns
  assert fit(tmp_path, epochs=2).initial_epoch == 1
  with open(tmp_path / run_dir.LOCK_FILE) as f:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_lock_held_by_another_process_refuses_a_fresh_directory_run(tmp_path):
  """The lock of a process that holds it (here a child that sleeps) refuses the run."""
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  holder = subprocess.Popen(
    [
      sys.executable,
      "-c",
      "import fcntl, os, sys, time\n"
      f"f = open({str(model_dir / run_dir.LOCK_FILE)!r}, 'w')\n"
      "fcntl.flock(f, fcntl.LOCK_EX)\n"
      "f.write(f'childhost {os.getpid()}'); f.flush()\n"
      "print('locked', flush=True)\n"
      "time.sleep(60)\n",
    ],
    stdout=subprocess.PIPE,
    text=True,
  )
  try:
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(run_dir.RunDirError, match=f"childhost {holder.pid}"):
      fit(model_dir, epochs=1)
    assert sorted(os.listdir(model_dir)) == [run_dir.LOCK_FILE]
  finally:
    holder.kill()
    holder.wait()
  assert fit(model_dir, epochs=1).initial_epoch == 0  # the dead holder's lock went with it


# --- a full disk while writing run.json, flags.txt, train.json, TensorBoard events -----------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("name", [run_dir.FLAGS_FILE, run_dir.TRAIN_FILE, run_dir.RUN_FILE])
def test_a_full_disk_while_writing_the_run_files_is_one_line_and_loses_nothing(tmp_path, name):
  """Each file is written aside and renamed: here the aside file is /dev/full, where every
  write fails with ENOSPC, as on a full disk."""
  fit(tmp_path, epochs=1, flags_text="--epochs=1\n")
  old = (tmp_path / name).read_bytes()
  first = file_bytes(tmp_path, 1)
  os.symlink("/dev/full", tmp_path / f"{name}.tmp")
  with pytest.raises(files.WriteError) as full:
    fit(tmp_path, epochs=2, flags_text="--epochs=2\n")
  message = str(full.value)
  assert "\n" not in message
  assert f"could not write {tmp_path / name}" in message and "the disk is full" in message
  assert not os.path.lexists(tmp_path / f"{name}.tmp")
  assert (tmp_path / name).read_bytes() == old  # whole, as it was
  assert file_bytes(tmp_path, 1) == first and checkpoints_on_disk(tmp_path) == ["ckpt-1"]
  assert fit(tmp_path, epochs=2, flags_text="--epochs=2\n").initial_epoch == 1  # disk freed
  history = (tmp_path / run_dir.FLAGS_HISTORY_FILE).read_text()
  assert history == "# epochs 1-1\n--epochs=1\n"  # once, however many tries


def test_a_full_disk_while_writing_tensorboard_events_is_one_line(tmp_path, monkeypatch):
  """TensorBoard's writer fails as it does on a full tmpfs (ResourceExhaustedError from its
  WriteSummary op, message as measured there); the checkpoint of the epoch stays."""
  fit(tmp_path, epochs=1)

  def disk_full(self, epoch, logs=None):
    raise tf.errors.ResourceExhaustedError(
      None, None, f"{tmp_path}/logs/train/events.out.tfevents.1.v2; No space left on device"
    )

  monkeypatch.setattr(keras.callbacks.TensorBoard, "on_epoch_end", disk_full)
  with pytest.raises(run_dir.RunDirError) as full:
    fit(tmp_path, epochs=2)
  message = str(full.value)
  assert "\n" not in message and "No space left on device" in message and "disk full" in message
  assert f"the last good checkpoint {ckpt(tmp_path, 2)} is kept" in message, message
  assert checkpoints_on_disk(tmp_path) == ["ckpt-1", "ckpt-2"]
  assert all(run_dir.checkpoint_problem(ckpt(tmp_path, n)) is None for n in (1, 2))


# --- a model_dir that cannot be written --------------------------------------------------


def test_a_model_dir_under_a_file_is_refused_before_anything_is_written(tmp_path):
  (tmp_path / "file").write_text("")
  model_dir = str(tmp_path / "file" / "run")
  expected = f"--model_dir={model_dir} cannot be created: {tmp_path / 'file'} is not a directory"
  with pytest.raises(run_dir.RunDirError, match=expected):
    run_dir.check_model_dir(model_dir, MODEL)
  with pytest.raises(run_dir.RunDirError, match="cannot be created or written .*Error"):
    with run_dir.model_dir_lock(model_dir):  # the first write, should the check be skipped
      pass
  assert sorted(os.listdir(tmp_path)) == ["file"]


def test_a_read_only_model_dir_parent_is_refused_before_anything_is_written(tmp_path):
  parent = read_only_dir(tmp_path)
  model_dir = str(parent / "jmvae_run")
  with pytest.raises(run_dir.RunDirError, match=f"{parent} is read-only for this user"):
    fit(model_dir, epochs=1)
  assert not os.path.exists(model_dir)


def test_a_missing_model_dir_parent_is_created(tmp_path):
  model_dir = tmp_path / "a" / "b" / "run"
  assert run_dir.check_model_dir(str(model_dir), MODEL) is None
  assert fit(model_dir, epochs=1).initial_epoch == 0
  assert checkpoints_on_disk(model_dir) == ["ckpt-1"]


# --- resume semantics ---------------------------------------------------------------------


@pytest.mark.parametrize(
  "field, value",
  [
    ("batch_size", 4),
    ("data_seed", 1),
    ("num_train", 100),
    ("data_options", ("crop=center",)),
    ("precision", "mixed_bfloat16"),
    ("warmup_epochs", 2),
    ("adam_epsilon", 1e-4),
    ("clipnorm", 5.0),
  ],
)
def test_a_resume_that_changes_the_optimisation_or_the_data_is_refused(tmp_path, field, value):
  fit(tmp_path, epochs=1, num_train=96)
  before = snapshot(tmp_path)
  saved = options.TrainConfig.from_dict(
    json.loads((tmp_path / run_dir.TRAIN_FILE).read_text())["train_config"]
  ).as_dict()
  with pytest.raises(run_dir.RunDirError) as refused:
    fit(tmp_path, epochs=2, **{"num_train": 96, field: value})
  message = str(refused.value)
  assert "\n" not in message
  assert f"(--{field} {saved[field]!r} vs {value!r}; saved vs asked)" in message
  assert snapshot(tmp_path) == before  # refused before anything is written
  assert field in options.FixedSettings.field_names()


def test_resume_rules_cover_every_train_setting_and_allow_what_does_not_change_learning():
  fields = set(options.FixedSettings.field_names()) | set(options.RunSettings.field_names())
  may = set(options.RunSettings.field_names())
  assert may == {
    "epochs",
    "eval_every",
    "steps_per_execution",
    "jit_compile",
    "strategy",
    "learning_rate",
    "recalibrate_batchnorm",
  }
  documented = (ROOT / "docs" / "RELIABILITY.md").read_text()
  assert all(f"`--{name}`" in documented for name in fields)  # the table there is this one
  saved = options.TrainConfig.make(epochs=2, batch_size=8)
  asked = options.TrainConfig.make(epochs=5, batch_size=8, eval_every=1, learning_rate=1e-4)
  assert saved.resume_conflicts(asked) == {}
  assert saved.resume_conflicts(options.TrainConfig.make(batch_size=4, data_seed=3)) == {
    "batch_size": (8, 4),
    "data_seed": (0, 3),
  }
  # a run trained through the library, which records no num_train, resumes from the runner
  assert saved.resume_conflicts(options.TrainConfig.make(batch_size=8, num_train=96)) == {}


def test_a_finished_run_asked_for_no_more_epochs_is_left_alone_whatever_the_settings(tmp_path):
  fit(tmp_path, epochs=2, flags_text="--epochs=2\n")
  lock = str(tmp_path / run_dir.LOCK_FILE)  # names the latest owner, who took it
  before = snapshot(tmp_path)
  result = fit(tmp_path, epochs=2, batch_size=4, flags_text="--epochs=2\n--batch_size=4\n")
  assert result.history == {} and result.initial_epoch == 2
  after = snapshot(tmp_path)
  assert after.pop(lock) and before.pop(lock)
  assert after == before  # flags.txt still says what trained the checkpoints


def _checkpoint_learning_rate(prefix):
  return float(
    tf.train.load_checkpoint(prefix).get_tensor(
      "optimizer/learning_rate/.ATTRIBUTES/VARIABLE_VALUE"
    )
  )


def test_a_new_learning_rate_on_resume_is_applied_and_recorded(tmp_path):
  for run in ("new_rate", "same_rate"):
    fit(tmp_path / run, epochs=2, learning_rate=1e-3, flags_text="--learning_rate=0.001\n")
  resumed = fit(
    tmp_path / "new_rate", epochs=3, learning_rate=5e-4, flags_text="--learning_rate=0.0005\n"
  )
  assert resumed.initial_epoch == 2
  # the restored optimiser runs at the new rate, not the checkpoint's
  assert resumed.model.optimizer.learning_rate.numpy() == np.float32(5e-4)
  assert _checkpoint_learning_rate(ckpt(tmp_path / "new_rate", 2)) == np.float32(1e-3)
  assert _checkpoint_learning_rate(ckpt(tmp_path / "new_rate", 3)) == np.float32(5e-4)
  same = fit(tmp_path / "same_rate", epochs=3, learning_rate=1e-3)
  changed = [
    not np.array_equal(a.numpy(), b.numpy())
    for a, b in zip(resumed.model.trainable_variables, same.model.trainable_variables)
  ]
  assert all(changed)  # epoch 3 took other steps: the rate was used
  # recorded: flags.txt and train.json describe the newest checkpoints, the history the rest
  run = tmp_path / "new_rate"
  assert (run / run_dir.FLAGS_FILE).read_text() == "--learning_rate=0.0005\n"
  assert (run / run_dir.FLAGS_HISTORY_FILE).read_text() == ("# epochs 1-2\n--learning_rate=0.001\n")
  record = json.loads((run / run_dir.TRAIN_FILE).read_text())
  assert record["start_epoch"] == 2 and record["train_config"]["learning_rate"] == 5e-4
  # another change (here of --epochs alone) moves these flags to the history in turn
  fit(run, epochs=4, learning_rate=5e-4, flags_text="--learning_rate=0.0005\n--epochs=4\n")
  assert (run / run_dir.FLAGS_HISTORY_FILE).read_text() == (
    "# epochs 1-2\n--learning_rate=0.001\n# epochs 3-3\n--learning_rate=0.0005\n"
  )
  assert json.loads((run / run_dir.TRAIN_FILE).read_text())["start_epoch"] == 3


def test_a_directory_from_before_train_json_keeps_its_flags_in_the_history(tmp_path):
  fit(tmp_path, epochs=2, flags_text="--epochs=2\n")
  os.remove(tmp_path / run_dir.TRAIN_FILE)  # as runners.train wrote directories before it
  assert fit(tmp_path, epochs=3, flags_text="--epochs=3\n").initial_epoch == 2
  assert (tmp_path / run_dir.FLAGS_HISTORY_FILE).read_text() == "# epochs 1-2\n--epochs=2\n"
  assert (tmp_path / run_dir.FLAGS_FILE).read_text() == "--epochs=3\n"
  assert json.loads((tmp_path / run_dir.TRAIN_FILE).read_text())["start_epoch"] == 2


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
