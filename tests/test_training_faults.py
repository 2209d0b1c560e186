"""Nothing lost under faults: divergence, broken checkpoints, a full disk, two runs at once.

Tiny models (latent_dim 4, batches of 8, 3 steps an epoch) on random binary data, trained
with training.train as runners.train trains them; one subprocess test of the runner.
"""

import errno
import fcntl
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tiny_runs import write_fake_mnist

from jmvae_tf import config, training

ROOT = Path(__file__).resolve().parents[1]
BATCH, STEPS = 8, 3
MODEL = config.ModelConfig.make("jmvae", latent_dim=4)


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


def fit(model_dir, epochs, poison=None, **train_kw):
  data = _data(max(epochs, 4), poison)
  kw = dict(
    epochs=epochs, batch_size=BATCH, warmup_epochs=0, steps_per_execution=1, strategy="default"
  )
  kw.update(train_kw)
  return training.train(
    MODEL,
    config.TrainConfig(**kw),
    str(model_dir),
    lambda start: (
      tf.data.Dataset.from_tensor_slices(data).batch(BATCH).skip(start * STEPS).repeat()
    ),
    steps_per_epoch=STEPS,
    verbose=0,
  )


def ckpt(model_dir, n):
  return str(Path(model_dir) / training.CKPT_DIR / f"ckpt-{n}")


def all_finite(prefix):
  reader = tf.train.load_checkpoint(prefix)
  dtypes = reader.get_variable_to_dtype_map()
  return all(np.isfinite(reader.get_tensor(k)).all() for k, d in dtypes.items() if d.is_floating)


def checkpoints_on_disk(model_dir):
  return sorted(
    p.name[: -len(".index")] for p in (Path(model_dir) / training.CKPT_DIR).glob("*.index")
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
  with pytest.raises(training.TrainingDiverged) as diverged:
    fit(tmp_path, epochs=4, poison=(3, 2))
  message = str(diverged.value)
  assert "\n" not in message
  assert "epoch 3, step 2 of 3" in message, message
  assert "non-finite loss term nll_image=nan" in message and "loss=nan" in message, message
  assert f"the last good checkpoint {ckpt(tmp_path, 2)} is kept" in message, message
  # nothing of epoch 3 was saved; what was saved is finite and is what resumes and restores
  assert checkpoints_on_disk(tmp_path) == ["ckpt-1", "ckpt-2"]
  assert all(all_finite(ckpt(tmp_path, n)) for n in (1, 2))
  assert training.find_checkpoint(str(tmp_path)) == ckpt(tmp_path, 2)
  training.restore_model(str(tmp_path))
  # the run's lock went with it
  with open(tmp_path / training.LOCK_FILE) as f:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_non_finite_weights_are_never_saved(tmp_path):
  """The loss of an epoch's last step is computed before its update: the weights are
  checked again before the save."""
  fit(tmp_path, epochs=1)
  model = training.build_model(MODEL)
  model.compile(optimizer=training.make_optimizer(config.TrainConfig()))
  epoch = tf.Variable(0, dtype=tf.int64)
  manager = tf.train.CheckpointManager(
    training.make_checkpoint(model, model.optimizer, epoch),
    str(tmp_path / training.CKPT_DIR),
    max_to_keep=3,
  )
  saver = training.CheckpointEveryEpoch(manager, epoch, str(tmp_path), ckpt(tmp_path, 1))
  saver.set_model(model)
  kernel = model.trainable_variables[0]
  kernel.assign(tf.fill(kernel.shape, np.inf))
  with pytest.raises(training.TrainingDiverged, match="epoch 2: its weights are not all finite"):
    saver.on_epoch_end(1)
  assert checkpoints_on_disk(tmp_path) == ["ckpt-1"]


def test_restore_model_refuses_a_checkpoint_with_non_finite_weights(tmp_path):
  fit(tmp_path, epochs=1)
  model = training.restore_model(str(tmp_path))
  kernel = model.trainable_variables[0]
  kernel.assign(tf.fill(kernel.shape, np.nan))
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(model=model), str(tmp_path / training.CKPT_DIR), max_to_keep=3
  )
  assert manager.save(checkpoint_number=2).endswith("ckpt-2")
  with pytest.raises(training.RunDirError, match="ckpt-2 holds non-finite weights"):
    training.restore_model(str(tmp_path))
  training.restore_model(str(tmp_path), ckpt(tmp_path, 1))  # an earlier one is fine


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
  assert training.find_checkpoint(str(tmp_path)) == ckpt(tmp_path, 2)
  warning = capsys.readouterr().err
  assert "skipped unreadable checkpoint(s) ckpt-3 (no .index file); using ckpt-2" in warning
  result = fit(tmp_path, epochs=3)
  assert result.initial_epoch == 2  # not a fresh start over the intact checkpoints
  assert {n: file_bytes(tmp_path, n) for n in (1, 2)} == older
  assert training.find_checkpoint(str(tmp_path)) == ckpt(tmp_path, 3)
  assert training.checkpoint_problem(ckpt(tmp_path, 3)) is None


def test_truncated_data_falls_back_in_training_and_in_restore_model(tmp_path, capsys):
  fit(tmp_path, epochs=2)
  first = file_bytes(tmp_path, 1)
  truncate_data(tmp_path, 2)
  capsys.readouterr()
  model = training.restore_model(str(tmp_path))
  assert "ckpt-2 (IndexError" in capsys.readouterr().err
  reference = training.restore_model(str(tmp_path), ckpt(tmp_path, 1))
  for a, b in zip(model.variables, reference.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  with pytest.raises(training.RunDirError, match="ckpt-2 is unreadable: IndexError"):
    training.restore_model(str(tmp_path), ckpt(tmp_path, 2))  # asked for by name: no fallback
  assert training.check_model_dir(str(tmp_path), MODEL) == ckpt(tmp_path, 1)
  result = fit(tmp_path, epochs=2)
  assert result.initial_epoch == 1
  assert file_bytes(tmp_path, 1) == first
  assert training.find_checkpoint(str(tmp_path)) == ckpt(tmp_path, 2)  # saved again, whole


def test_a_directory_of_unreadable_checkpoints_is_an_error_not_a_fresh_start(tmp_path):
  fit(tmp_path, epochs=2)
  truncate_data(tmp_path, 2)
  os.remove(ckpt(tmp_path, 1) + ".index")
  before = snapshot(tmp_path)
  expected = "no readable checkpoint under ckpt/: ckpt-2 .IndexError.*; ckpt-1 .no .index file."
  for attempt in (
    lambda: training.check_model_dir(str(tmp_path), MODEL),
    lambda: training.restore_model(str(tmp_path)),
    lambda: fit(tmp_path, epochs=3),
  ):
    with pytest.raises(training.RunDirError, match=expected):
      attempt()
  assert snapshot(tmp_path) == before


def test_a_partial_save_left_by_a_crash_is_removed_before_training(tmp_path, capsys):
  fit(tmp_path, epochs=1)
  partial = tmp_path / "ckpt" / "ckpt-2_temp_0123abcd"
  partial.mkdir()
  (partial / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 100)
  assert training.check_model_dir(str(tmp_path), MODEL) == ckpt(tmp_path, 1)
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
  with pytest.raises(training.RunDirError) as full:
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
  owner = (tmp_path / training.LOCK_FILE).read_text().split()
  assert owner == [socket.gethostname(), str(os.getpid())]
  with open(tmp_path / training.LOCK_FILE, "r+") as held:  # another run, as the kernel sees it
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    held.truncate(0)
    held.write("otherhost 4242\n")
    held.flush()
    before = snapshot(tmp_path)
    with pytest.raises(
      training.RunDirError, match="in use by another training run .otherhost 4242, holding"
    ):
      fit(tmp_path, epochs=2)
    assert snapshot(tmp_path) == before
  # once the holder is gone the run goes ahead, and lets go of the lock when it returns
  assert fit(tmp_path, epochs=2).initial_epoch == 1
  with open(tmp_path / training.LOCK_FILE) as f:
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
      f"f = open({str(model_dir / training.LOCK_FILE)!r}, 'w')\n"
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
    with pytest.raises(training.RunDirError, match=f"childhost {holder.pid}"):
      fit(model_dir, epochs=1)
    assert sorted(os.listdir(model_dir)) == [training.LOCK_FILE]
  finally:
    holder.kill()
    holder.wait()
  assert fit(model_dir, epochs=1).initial_epoch == 0  # the dead holder's lock went with it
