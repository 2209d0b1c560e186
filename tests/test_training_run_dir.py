"""The model directory (jmvae_tf/training/run_dir.py): which runs it refuses, what it records, how it
finds, checks and restores checkpoints, its lock, and what cannot be written.

Tiny models (short_runs: latent_dim 4, batches of 8, 3 steps an epoch) on random binary data,
trained with jmvae_tf.train as runners.train trains them.
"""

import fcntl
import json
import os
import socket
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from model_configs import mnist_config
from short_runs import MODEL, checkpoints_on_disk, ckpt, file_bytes, fit, snapshot, truncate_data
from tiny_runs import read_only_dir, train_tiny

from jmvae_tf.core import files, options
from jmvae_tf.models import config
from jmvae_tf.training import run_dir
from pipelines.mnist import mnist_modalities
from runners import train as train_runner

# --- refusing another model ------------------------------------------------------------------


def config_from_flags(*args):
  """runners.train's model config from flags (all models' flags are defined)."""
  fv = flags.FlagValues()
  train_runner.define_flags(fv)
  fv(["train", "--model_dir=unused", *args])
  mnist = types.SimpleNamespace(
    modalities=mnist_modalities(), architecture="mnist_mlp", name="mnist"
  )
  return train_runner.model_config_from_flags(mnist, fv)


def test_resume_of_jmvae_ignores_options_it_does_not_use(tmp_path):
  """A JMVAE run resumes with the same config, also when a flag it does not use (alpha)
  differs: that flag is not part of its config."""
  train_tiny(tmp_path, "jmvae")
  assert config.ModelConfig.from_json((tmp_path / run_dir.RUN_FILE).read_text()) == (
    mnist_config("jmvae", latent_dim=4)
  )
  before = snapshot(tmp_path)
  checkpoint = run_dir.check_model_dir(str(tmp_path), mnist_config("jmvae", latent_dim=4))
  assert checkpoint == run_dir.find_checkpoint(str(tmp_path)) and checkpoint.endswith("ckpt-1")
  with_alpha = config_from_flags("--model=jmvae", "--latent_dim=4", "--alpha=0.1")
  assert with_alpha == mnist_config("jmvae", latent_dim=4)
  assert run_dir.check_model_dir(str(tmp_path), with_alpha) == checkpoint
  # another model, or another latent size, is refused naming only what differs
  with pytest.raises(run_dir.RunDirError) as refused:
    run_dir.check_model_dir(str(tmp_path), mnist_config("jmvae_kl", latent_dim=4))
  message = str(refused.value)
  assert "(--model 'jmvae' vs 'jmvae_kl'; saved vs asked)" in message
  assert "alpha" not in message and "latent_dim" not in message
  with pytest.raises(run_dir.RunDirError, match="--latent_dim 4 vs 8;"):
    run_dir.check_model_dir(str(tmp_path), mnist_config("jmvae", latent_dim=8))
  assert snapshot(tmp_path) == before


def test_resume_of_jmvae_kl_is_refused_for_another_alpha(tmp_path):
  """JMVAE-kl uses alpha: a run with alpha 1 is not resumed with alpha 0.1 (and the directory
  is left as it was), but is with alpha 1."""
  train_tiny(tmp_path, "jmvae_kl", alpha=1.0)
  before = snapshot(tmp_path)
  asked = config_from_flags("--model=jmvae_kl", "--latent_dim=4", "--alpha=0.1")
  with pytest.raises(run_dir.RunDirError) as refused:
    run_dir.check_model_dir(str(tmp_path), asked)
  message = str(refused.value)
  assert "--alpha 1.0 vs 0.1" in message and "different model" in message
  assert "latent_dim" not in message and "--model " not in message
  same = mnist_config("jmvae_kl", latent_dim=4, alpha=1.0)
  assert run_dir.check_model_dir(str(tmp_path), same).endswith("ckpt-1")
  assert snapshot(tmp_path) == before


def test_check_model_dir_of_a_fresh_directory(tmp_path):
  """No checkpoint: nothing to resume, any config is accepted; a file is not a directory."""
  made = mnist_config("jmvae", latent_dim=4)
  assert run_dir.check_model_dir(str(tmp_path / "new"), made) is None
  (tmp_path / "file").write_text("x")
  with pytest.raises(run_dir.RunDirError, match="not a directory"):
    run_dir.check_model_dir(str(tmp_path / "file"), made)


def test_model_dir_of_another_model_is_refused_and_left_alone(tmp_path):
  """Training refuses, through check_model_dir, before anything is written."""
  fit(tmp_path, epochs=1)
  before = snapshot(tmp_path)
  with pytest.raises(
    run_dir.RunDirError, match="different model .--model 'jmvae' vs 'cvae'; saved vs asked"
  ):
    fit(tmp_path, epochs=2, model_config=mnist_config("cvae", latent_dim=4))
  with pytest.raises(run_dir.RunDirError, match="latent_dim"):
    fit(tmp_path, epochs=2, model_config=mnist_config("jmvae", latent_dim=2))
  assert snapshot(tmp_path) == before


# --- reading a run: load_run and load ------------------------------------------------------


def test_load_errors(tmp_path):
  with pytest.raises(run_dir.RunDirError, match="run.json"):
    run_dir.load(str(tmp_path))


def test_load_run_reads_the_record_and_refuses_what_it_cannot_read(tmp_path):
  """A Run holds run.json's config, train.json's record (data options sorted) and the newest
  checkpoint; a directory without checkpoints, or a train.json that does not parse, is a
  RunDirError saying so."""
  fit(tmp_path, epochs=1, data_options=("b=2", "a=1"))
  run = run_dir.load_run(str(tmp_path))
  assert run.config == MODEL and run.checkpoint == ckpt(tmp_path, 1)
  assert run.record.start_epoch == 0 and run.record.train_config.run.epochs == 1
  assert run.data_options == ("a=1", "b=2")
  assert run_dir.checkpoint_epoch(run.checkpoint) == 1
  bare = tmp_path / "bare"
  bare.mkdir()
  (bare / run_dir.RUN_FILE).write_text(MODEL.to_json())
  with pytest.raises(run_dir.RunDirError, match="has no checkpoint under ckpt/"):
    run_dir.load_run(str(bare))
  (tmp_path / run_dir.TRAIN_FILE).write_text("{not json")
  with pytest.raises(run_dir.RunDirError, match="train.json is unreadable .*; move it away"):
    run_dir.load_run(str(tmp_path))


@pytest.mark.parametrize(
  "change, message",
  [
    (lambda text: text.replace(":", "", 1), "run.json is not JSON (Expecting ':' delimiter"),
    (lambda text: "[1, 2]", "run.json cannot be read: expected a JSON object, got list"),
    (lambda d: {k: v for k, v in d.items() if k != "latent_dim"}, "it lacks 'latent_dim'"),
    (lambda d: {k: v for k, v in d.items() if k != "modalities"}, "it lacks 'modalities'"),
    (lambda d: dict(d, latent_dim="64"), "latent_dim must be an integer, got '64'"),
    (lambda d: dict(d, latent_dim=1e12), "latent_dim must be an integer, got 1000000000000.0"),
    (lambda d: dict(d, latent_dim=10**12), "latent_dim must be at most 10000"),
    (lambda d: dict(d, modalities=[{"name": "image"}]), "modality 0 must have a name, a kind"),
    (lambda d: dict(d, alpha=float("nan")), "alpha must be a finite number"),
  ],
)
def test_a_damaged_run_json_is_one_line_naming_it_before_any_model_is_built(
  tmp_path, change, message
):
  """run.json that is not JSON, lacks a field (none is filled in with a default the run may
  not have had: a JMVAE-kl trained at latent_dim 2 is not rebuilt at 64), or holds a field of
  the wrong type or size: a RunDirError naming the directory, run.json and the field."""
  run_json = tmp_path / run_dir.RUN_FILE
  good = mnist_config("jmvae_kl", latent_dim=2).to_json()
  if "JSON (" in message or "object" in message:
    run_json.write_text(change(good))
  else:
    run_json.write_text(json.dumps(change(json.loads(good))))
  with pytest.raises(run_dir.RunDirError) as refused:
    run_dir.read_model_config(str(tmp_path))
  text = str(refused.value)
  assert "\n" not in text and f"--model_dir={tmp_path}: run.json" in text, text
  assert message in text, text


def test_a_run_json_from_before_a_field_existed_reads_with_the_value_those_runs_had(tmp_path):
  """decoder_variance, dataset and architecture came later (config.ADDED_LATER): a run.json
  without them is a run of their values then, the only fields filled in."""
  d = json.loads(mnist_config("jmvae_kl", latent_dim=2).to_json())
  for name in config.ADDED_LATER:
    del d[name]
  (tmp_path / run_dir.RUN_FILE).write_text(json.dumps(d))
  assert run_dir.read_model_config(str(tmp_path)) == mnist_config("jmvae_kl", latent_dim=2)


def test_load_refuses_a_checkpoint_with_non_finite_weights(tmp_path):
  fit(tmp_path, epochs=1)
  model = run_dir.load(str(tmp_path))
  kernel = model.trainable_variables[0]
  kernel.assign(tf.fill(kernel.shape, np.nan))
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(model=model), str(tmp_path / run_dir.CKPT_DIR), max_to_keep=3
  )
  assert manager.save(checkpoint_number=2).endswith("ckpt-2")
  with pytest.raises(run_dir.RunDirError, match="ckpt-2 holds non-finite weights"):
    run_dir.load(str(tmp_path))
  run_dir.load(str(tmp_path), ckpt(tmp_path, 1))  # an earlier one is fine


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


def test_truncated_data_falls_back_in_training_and_in_load(tmp_path, capsys):
  fit(tmp_path, epochs=2)
  first = file_bytes(tmp_path, 1)
  truncate_data(tmp_path, 2)
  capsys.readouterr()
  model = run_dir.load(str(tmp_path))
  assert "ckpt-2 (IndexError" in capsys.readouterr().err
  reference = run_dir.load(str(tmp_path), ckpt(tmp_path, 1))
  for a, b in zip(model.variables, reference.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  with pytest.raises(run_dir.RunDirError, match="ckpt-2 is unreadable: IndexError"):
    run_dir.load(str(tmp_path), ckpt(tmp_path, 2))  # asked for by name: no fallback
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
    lambda: run_dir.load(str(tmp_path)),
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


# --- a full disk while writing run.json, flags.txt, train.json -------------------------------


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


def test_a_finished_run_asked_for_no_more_epochs_is_left_alone_whatever_the_settings(tmp_path):
  fit(tmp_path, epochs=2, flags_text="--epochs=2\n")
  lock = str(tmp_path / run_dir.LOCK_FILE)  # names the latest owner, who took it
  before = snapshot(tmp_path)
  result = fit(tmp_path, epochs=2, batch_size=4, flags_text="--epochs=2\n--batch_size=4\n")
  assert result.history == {} and result.initial_epoch == 2
  after = snapshot(tmp_path)
  assert after.pop(lock) and before.pop(lock)
  assert after == before  # flags.txt still says what trained the checkpoints


def test_a_directory_from_before_train_json_keeps_its_flags_in_the_history(tmp_path):
  fit(tmp_path, epochs=2, flags_text="--epochs=2\n")
  os.remove(tmp_path / run_dir.TRAIN_FILE)  # as runners.train wrote directories before it
  assert fit(tmp_path, epochs=3, flags_text="--epochs=3\n").initial_epoch == 2
  assert (tmp_path / run_dir.FLAGS_HISTORY_FILE).read_text() == "# epochs 1-2\n--epochs=2\n"
  assert (tmp_path / run_dir.FLAGS_FILE).read_text() == "--epochs=3\n"
  assert json.loads((tmp_path / run_dir.TRAIN_FILE).read_text())["start_epoch"] == 2


def test_remove_partial_saves_removes_only_leftovers_and_an_unreadable_numbered_checkpoint(
  tmp_path,
):
  """In-progress ckpt-N_temp* directories and checkpoint.tmp* state files go; with a number,
  that checkpoint's files go only if it is unreadable."""
  fit(tmp_path, epochs=2)
  ckpt_dir = tmp_path / run_dir.CKPT_DIR
  (ckpt_dir / "ckpt-3_temp_abc").mkdir()
  (ckpt_dir / "checkpoint.tmp123").write_text("x")
  removed = run_dir.remove_partial_saves(str(tmp_path), number=2)  # ckpt-2 is readable
  assert sorted(os.path.basename(p) for p in removed) == ["checkpoint.tmp123", "ckpt-3_temp_abc"]
  assert checkpoints_on_disk(tmp_path) == ["ckpt-1", "ckpt-2"]
  truncate_data(tmp_path, 2)
  removed = run_dir.remove_partial_saves(str(tmp_path), number=2)
  assert sorted(os.path.basename(p) for p in removed) == [
    "ckpt-2.data-00000-of-00001",
    "ckpt-2.index",
  ]
  assert checkpoints_on_disk(tmp_path) == ["ckpt-1"]
  assert run_dir.remove_partial_saves(str(tmp_path / "none")) == []


# --- the checkpoint carries its config (issue 30) ----------------------------------------------


def _edit_run_json(model_dir, edit):
  path = model_dir / run_dir.RUN_FILE
  path.write_text(json.dumps(edit(json.loads(path.read_text()))))


KL = mnist_config("jmvae_kl", latent_dim=4)


def _first_modality(d, **change):
  return {**d, "modalities": [dict(d["modalities"][0], **change)] + d["modalities"][1:]}


@pytest.mark.parametrize(
  "edit, fields",
  [
    (lambda d: _first_modality(d, kind="gaussian_fixed"), ["modalities"]),
    (lambda d: {**d, "model": "jmvae"}, ["model"]),
    (lambda d: {**d, "modalities": d["modalities"][::-1]}, ["modalities"]),
    (lambda d: {**d, "latent_dim": 32}, ["latent_dim"]),
    (lambda d: _first_modality(d, name="picture"), ["modalities"]),
  ],
  ids=["kind", "model", "reordered", "latent_dim", "renamed"],
)
def test_a_run_json_that_does_not_match_its_checkpoint_is_refused_naming_the_fields(
  tmp_path, edit, fields
):
  """Each hand edit that passes run.json's own checks (a Bernoulli decoder to be served as a
  Gaussian, JMVAE on a JMVAE-kl checkpoint, ...): loading (what export, evaluate and every
  consumer do) is refused in one line naming run.json and the field, before any model is
  built; resuming is refused too. restore_run_json writes the checkpoint's config back."""
  fit(tmp_path, epochs=1, model_config=KL)
  _edit_run_json(tmp_path, edit)
  with pytest.raises(run_dir.RunDirError) as refused:
    run_dir.load_run(str(tmp_path))
  message = str(refused.value)
  assert "run.json does not match the config its checkpoint" in message and "\n" not in message
  assert all(f"{field}: " in message for field in fields), message
  assert "--restore_run_json" in message
  with pytest.raises(run_dir.RunDirError):
    fit(tmp_path, epochs=2, model_config=KL)
  path = run_dir.restore_run_json(str(tmp_path))
  assert config.ModelConfig.from_json(open(path).read()) == KL
  assert run_dir.load_run(str(tmp_path)).restore() is not None


def test_a_lost_run_json_is_restored_from_the_checkpoint_by_the_export_runner(tmp_path):
  """runners.export --restore_run_json writes run.json from the checkpoint's config."""
  fit(tmp_path, epochs=1)
  original = (tmp_path / run_dir.RUN_FILE).read_text()
  (tmp_path / run_dir.RUN_FILE).unlink()
  proc = subprocess.run(
    [sys.executable, "-m", "runners.export", f"--model_dir={tmp_path}", "--restore_run_json"],
    capture_output=True,
    text=True,
    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    check=False,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "from the config of its checkpoint" in proc.stdout
  assert json.loads((tmp_path / run_dir.RUN_FILE).read_text()) == json.loads(original)


def test_a_checkpoint_from_before_it_carried_its_config_loads_with_a_line_saying_so(
  tmp_path, capsys
):
  """Older directories keep working with run.json alone; one line says they cannot be
  cross-checked."""
  fit(tmp_path, epochs=1)
  checkpoint = ckpt(tmp_path, 1)
  model = run_dir.load_run(str(tmp_path)).restore()
  epoch = tf.Variable(1, dtype=tf.int64)
  old = tmp_path / "old"
  (old / run_dir.CKPT_DIR).mkdir(parents=True)
  (old / run_dir.RUN_FILE).write_text(MODEL.to_json())
  tf.train.Checkpoint(model=model, epoch=epoch).save(str(old / run_dir.CKPT_DIR / "ckpt"))
  assert run_dir.checkpoint_config_text(checkpoint) is not None
  assert run_dir.checkpoint_config_text(ckpt(old, 1)) is None
  capsys.readouterr()
  run_dir.load_run(str(old)).restore()
  err = capsys.readouterr().err
  assert "was written before checkpoints carried their config" in err
  assert "cannot be cross-checked" in err
