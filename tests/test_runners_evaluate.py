"""runners.evaluate end to end on models trained for a few steps (in tmp_path): Table 1 rows,
the whole table from several directories, the synthetic stand-in labelled, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import read_only_dir, run_module, train_mnist_runs, write_fake_mnist

import jmvae_tf
from jmvae_tf.core import options
from jmvae_tf.models import config as config_lib
from jmvae_tf.training import driver
from pipelines import registry, synthetic_faces
from pipelines.celeba import CelebADataSet


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
  """A tiny MNIST-format data set: 200 train, 30 test random images."""
  return write_fake_mnist(tmp_path_factory.mktemp("mnist"), num_train=200, num_test=30)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, data_dir):
  return train_mnist_runs(tmp_path_factory.mktemp("runs"))


run = run_module


def test_evaluate_prints_and_writes_a_table1_row(model_dirs, data_dir):
  d = model_dirs["jmvae"]
  proc = run(
    "runners.evaluate",
    f"--model_dir={d}",
    f"--data_dir={data_dir}",
    "--num_test=20",
    "--iterations=2",
    "--num_samples=2",
    "--batch_size=10",
    "--iwae_samples=4",
    "--noprogress",
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "| JMVAE |" in proc.stdout and "K=2" in proc.stdout and "N=2" in proc.stdout
  rec = json.loads((d / "evaluation.json").read_text())
  assert rec["num_examples"] == 20 and rec["iterations"] == 2
  assert set(rec["values"]) == {
    "image|label",
    "label|image",
    "image|image,label",
    "label|image,label",
  }
  assert all(v < 0 for v in rec["values"].values())
  assert set(rec["iwae"]) == {"image|label", "label|image", "image,label"}
  assert "| JMVAE |" in (d / "evaluation.md").read_text()
  # Markdown escapes the bar of log p(x~|w) in the file; the console shows it plain.
  assert "log p(x~\\|w)" in (d / "evaluation.md").read_text()
  assert "log p(x~|w)" in proc.stdout and "\\|" not in proc.stdout
  assert "data: " not in proc.stdout and "data" not in rec  # MNIST is what Table 1 says
  # The runner is a shell over jmvae_tf.evaluate: from Python, the same record, number for number.
  data = registry.make_dataset("mnist", str(data_dir))
  settings = dict(num_test=20, iterations=2, num_samples=2, batch_size=10, iwae_samples=4)
  again = jmvae_tf.evaluate(jmvae_tf.load(str(d)), data, progress=False, **settings)
  for key in ("values", "iwae", "estimator", "model"):
    assert again[key] == rec[key], key
  assert again["coherence"]["pairs"] == rec["coherence"]["pairs"]
  assert "model_dir" not in again  # a model in memory has none; the runner's record adds it


@pytest.fixture(scope="module")
def synthetic_faces_run(tmp_path_factory):
  """JMVAE-kl trained one step on 30 synthetic faces (the CelebA stand-in)."""
  faces = tmp_path_factory.mktemp("faces")
  synthetic_faces.generate(faces, 30)
  data = CelebADataSet(data_dir=faces)
  model_config = config_lib.ModelConfig.make(
    "jmvae_kl", data.modalities, data.architecture, data.name, latent_dim=2
  )
  train_config = options.TrainConfig.make(
    epochs=1, batch_size=4, warmup_epochs=0, steps_per_execution=1, strategy="default"
  )
  model_dir = tmp_path_factory.mktemp("runs") / "jmvae_kl"
  driver.train(model_config, data, str(model_dir), train_config, verbose=0)
  return faces, model_dir


def test_evaluate_labels_numbers_measured_on_the_synthetic_stand_in(synthetic_faces_run):
  """Beside the paper's CelebA numbers, ours on the stand-in say what they were measured on."""
  faces, d = synthetic_faces_run
  proc = run(
    "runners.evaluate",
    f"--model_dirs={d}",
    "--dataset=celeb_a",
    f"--data_dir={faces}",
    "--num_samples=1",
    "--batch_size=3",
    "--noprogress",
    "--nocoherence",
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "on synthetic faces (not CelebA): 3 test examples" in proc.stdout
  assert "data: synthetic faces (not CelebA)\n\n| model |" in proc.stdout
  assert "(-6852.0)" in proc.stdout  # the paper's number is still there, labelled as its own
  assert "Ours (on synthetic faces (not CelebA)), with the paper's Table 2 (on its data" in (
    proc.stdout
  )
  rec = json.loads((d / "evaluation.json").read_text())
  assert rec["data"] == "synthetic faces (not CelebA)"
  assert (d / "evaluation.md").read_text().startswith("data: synthetic faces (not CelebA)\n")


def test_evaluate_takes_the_data_set_and_its_options_from_the_run(synthetic_faces_run, tmp_path):
  """No --dataset, no --data_options: the run's own (run.json's celeb_a, train.json's
  crop=center), where today's MNIST default refused it; it says which checkpoint it read.
  --data_options naming another crop is taken instead: other faces, other numbers."""
  faces, d = synthetic_faces_run
  record = json.loads((d / "train.json").read_text())
  record["train_config"]["data_options"] = ["crop=center"]
  centre = tmp_path / "centre"
  shutil.copytree(d, centre)
  (centre / "train.json").write_text(json.dumps(record))
  common = [
    f"--data_dir={faces}",
    "--num_samples=1",
    "--batch_size=3",
    "--noprogress",
    "--nocoherence",
  ]
  own = run("runners.evaluate", f"--model_dir={centre}", *common)
  assert own.returncode == 0, own.stderr[-2000:]
  assert f"read {centre}/ckpt/ckpt-1 (epoch 1 of jmvae_kl)" in own.stdout
  paper = run("runners.evaluate", f"--model_dir={centre}", "--data_options=crop=paper", *common)
  assert paper.returncode == 0, paper.stderr[-2000:]
  assert _values_of(own.stdout) != _values_of(paper.stdout)  # the run's crop was used


def _values_of(stdout: str) -> str:
  return next(line for line in stdout.splitlines() if line.startswith("| JMVAE-kl |"))


def test_evaluate_several_dirs_writes_the_whole_table(model_dirs, data_dir, tmp_path):
  dirs = ",".join(
    str(model_dirs[k]) for k in ("jmvae_kl", "hierarchical_jmvae", "cvae_image", "cvae_label")
  )
  proc = run(
    "runners.evaluate",
    f"--model_dirs={dirs}",
    f"--data_dir={data_dir}",
    f"--output_dir={tmp_path}",
    "--num_test=10",
    "--iterations=1",
    "--num_samples=1",
    "--noprogress",
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  table = (tmp_path / "table1.md").read_text()
  cvae_row = next(line for line in table.splitlines() if line.startswith("| CVAE |"))
  assert "—" not in cvae_row  # both directions fill one row
  assert "(-448.8)" in cvae_row  # the paper's number beside ours
  assert "| JMVAE-kl |" in table and "| Hierarchical JMVAE |" in table
  assert len(json.loads((tmp_path / "table1.json").read_text())) == 4


@pytest.mark.parametrize(
  "args, message",
  [
    (["--model_dir=/nonexistent/run"], "no run.json"),
    (["--num_test=99"], "asked for 99 test examples, it has 30"),
  ],
)
def test_evaluate_bad_input_is_one_line(model_dirs, data_dir, args, message):
  base = [f"--model_dir={model_dirs['jmvae']}", f"--data_dir={data_dir}"]
  names = {a.split("=")[0] for a in args}
  proc = run("runners.evaluate", *[a for a in base if a.split("=")[0] not in names], *args)
  assert proc.returncode == 2
  assert message in proc.stderr
  assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1


def test_unwritable_outputs_are_refused_before_any_work(model_dirs, data_dir, tmp_path):
  """evaluate's results (long work) would be lost at the end otherwise."""
  read_only = read_only_dir(tmp_path)
  proc = run(
    "runners.evaluate",
    f"--model_dir={model_dirs['jmvae']}",
    f"--data_dir={data_dir}",
    f"--output_dir={read_only}/table",
  )
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert f"--output_dir={read_only}/table cannot be written" in proc.stderr
  assert "evaluating" not in proc.stdout  # refused before any model was evaluated


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_after_the_evaluation_is_one_line(model_dirs, data_dir, tmp_path):
  """A write that fails after the checks ends the runner with one line naming the file, and
  the previous result stays whole. Files are written aside and renamed: here the aside file
  is a link to /dev/full, where every write fails with ENOSPC as on a full disk."""
  out = tmp_path / "out"
  out.mkdir()
  (out / "evaluation.json").write_text('{"earlier": true}')
  os.symlink("/dev/full", out / "evaluation.json.tmp")
  proc = run(
    "runners.evaluate",
    f"--model_dir={model_dirs['jmvae']}",
    f"--data_dir={data_dir}",
    f"--output_dir={out}",
    "--num_test=10",
    "--iterations=1",
    "--num_samples=1",
    "--noprogress",
  )
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "evaluating" in proc.stdout  # it failed after the work, not before
  errors = [line for line in proc.stderr.splitlines() if line.strip()]
  assert errors[-1].startswith("error:") and "Traceback" not in proc.stderr
  assert f"could not write {out / 'evaluation.json'}" in errors[-1]
  assert "the disk is full" in errors[-1]
  assert json.loads((out / "evaluation.json").read_text()) == {"earlier": True}


def test_evaluate_a_glob_matching_nothing_fails(model_dirs, data_dir, tmp_path):
  d = str(model_dirs["cvae_image"])
  proc = run(
    "runners.evaluate",
    f"--model_dirs={d},{model_dirs['jmvae']},{tmp_path}/none*",
    f"--data_dir={data_dir}",
  )
  assert proc.returncode == 2 and "matches no model directory" in proc.stderr


# --- three modalities (issue 20) -------------------------------------------------------------


@pytest.fixture(scope="module")
def k3_data(tmp_path_factory):
  root = tmp_path_factory.mktemp("k3")
  (root / "digits").mkdir()
  (root / "fashion").mkdir()
  return (
    write_fake_mnist(root / "digits", num_train=200, num_test=30, seed=0),
    write_fake_mnist(root / "fashion", num_train=200, num_test=30, seed=1),
  )


def k3_train(data, model_dir, epochs):
  digits, fashion = data
  return run(
    "runners.train",
    "--flagfile=configs/mnist_fashion_jmvae_kl.flags",
    f"--data_dir={digits}",
    f"--data_options=fashion_dir={fashion}",
    f"--model_dir={model_dir}",
    "--num_train=200",
    "--batch_size=50",
    "--latent_dim=4",
    "--warmup_epochs=1",
    f"--epochs={epochs}",
    "--verbose=0",
  )


def test_three_modalities_train_resume_bit_exactly_and_evaluate_every_pair(k3_data, tmp_path):
  """runners.train on mnist_fashion: two epochs straight, or one and a resumed second, give
  the same checkpoint to the bit; runners.evaluate (the data set from the run) then gives a
  log-likelihood for each modality given each set of the others (9, and 3 given all) and a
  coherence for each of the 9 pairs, beside its classifiers' test accuracy."""
  import tensorflow as tf

  straight, resumed = tmp_path / "straight", tmp_path / "resumed"
  assert k3_train(k3_data, straight, 2).returncode == 0
  assert k3_train(k3_data, resumed, 1).returncode == 0
  proc = k3_train(k3_data, resumed, 2)
  assert proc.returncode == 0, proc.stderr[-2000:]
  a = tf.train.load_checkpoint(str(straight / "ckpt" / "ckpt-2"))
  b = tf.train.load_checkpoint(str(resumed / "ckpt" / "ckpt-2"))
  names = sorted(a.get_variable_to_shape_map())
  assert names == sorted(b.get_variable_to_shape_map())
  for name in names:
    np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)
  proc = run(
    "runners.evaluate",
    f"--model_dir={straight}",
    f"--data_dir={k3_data[0]}",
    "--num_samples=2",
    "--iterations=2",
    "--classifier_epochs=1",
    "--prior_samples=50",
    "--noprogress",
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  rec = json.loads((straight / "evaluation.json").read_text())
  singles = [k for k in rec["values"] if k.split("|")[0] not in k.split("|")[1].split(",")]
  assert len(singles) == 9 and len(rec["values"]) == 12
  assert sorted(rec["coherence"]["pairs"]) == sorted(singles)
  assert all(0 <= v <= 1 for v in rec["coherence"]["pairs"].values())
  assert 0 <= rec["coherence"]["prior"] <= 1
  assert "digit read by a classifier trained on 200 real training images" in proc.stdout
  assert "| label | digit, fashion |" in proc.stdout and "log p(digit~|all)" in proc.stdout
  events = list((straight / "logs" / "evaluation").glob("events.out.tfevents.*"))
  tags = {
    v.tag
    for e in events
    for ev in tf.compat.v1.train.summary_iterator(str(e))
    for v in ev.summary.value
  }
  assert "coherence/label|digit,fashion" in tags and "log_likelihood/digit|fashion" in tags


def test_consumers_refuse_another_data_sets_files_and_records_say_what_was_read(tmp_path):
  """Issue 30: an MNIST run evaluated with --data_dir of another data set's files (no
  --dataset) exited 0 with numbers of the wrong data. evaluate and embed now check the run's
  recorded fingerprint before any work and refuse in one line; evaluation.json and .md say
  which data set, options and fingerprint the numbers are of."""
  (tmp_path / "mnist").mkdir()
  (tmp_path / "other").mkdir()
  mnist = write_fake_mnist(tmp_path / "mnist", num_train=120, num_test=20)
  other = write_fake_mnist(tmp_path / "other", num_train=120, num_test=20, seed=1)
  model_dir = tmp_path / "run"
  proc = run(
    "runners.train",
    f"--data_dir={mnist}",
    f"--model_dir={model_dir}",
    "--num_train=100",
    "--epochs=1",
    "--batch_size=20",
    "--latent_dim=2",
    "--verbose=0",
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  for runner, extra in (
    ("runners.evaluate", "--num_test=10"),
    ("runners.embed", "--num_examples=4"),
  ):
    refused = run(runner, f"--model_dir={model_dir}", f"--data_dir={other}", extra)
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"--data_dir={other} is not the data {model_dir}" in lines[0]
    assert "first 100 training examples' fingerprint" in lines[0]
  assert not (model_dir / "evaluation.json").exists() and not (model_dir / "projector").exists()
  proc = run(
    "runners.evaluate",
    f"--model_dir={model_dir}",
    f"--data_dir={mnist}",
    "--num_test=10",
    "--iterations=1",
    "--num_samples=1",
    "--nocoherence",
    "--noprogress",
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  rec = json.loads((model_dir / "evaluation.json").read_text())
  train = json.loads((model_dir / "train.json").read_text())["train_config"]
  assert rec["dataset"] == "mnist" and rec["data_options"] == []
  assert len(rec["data_fingerprint"]) == 16
  assert train["data_fingerprint"] != rec["data_fingerprint"]  # 100 examples, here all 120
  assert (
    f"Data: mnist; fingerprint of its training examples {rec['data_fingerprint']}."
    in (model_dir / "evaluation.md").read_text()
  )
