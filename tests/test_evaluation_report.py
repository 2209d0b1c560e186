"""jmvae_tf/evaluation/report.py: a model's evaluation from Python (jmvae_tf.evaluate; that it
is runners.evaluate's record, number for number, test_runners_evaluate.py shows): what a
one-way model fills, its settings checked before any work, and evaluate_runs writing each
record and the table where it is told."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_runs import train_mnist_runs, write_fake_mnist

import jmvae_tf
from jmvae_tf.evaluation import report
from pipelines import registry

SETTINGS = dict(num_test=20, iterations=2, num_samples=2, batch_size=10, iwae_samples=4)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  data_dir = write_fake_mnist(tmp_path_factory.mktemp("mnist"), num_train=200, num_test=30)
  dirs = train_mnist_runs(tmp_path_factory.mktemp("runs"), names=("jmvae", "cvae_image"))
  return data_dir, dirs


def test_a_one_way_model_fills_its_direction_and_says_so(runs):
  data_dir, dirs = runs
  data = registry.make_dataset("mnist", str(data_dir))
  record = jmvae_tf.evaluate(
    jmvae_tf.load(str(dirs["cvae_image"])), data, progress=False, with_coherence=False, **SETTINGS
  )
  assert set(record["values"]) == {"image|label", "image|image,label"}
  assert record["direction"] == "image|label" and "coherence" not in record
  assert np.isfinite(record["values"]["image|label"])


@pytest.mark.parametrize(
  "setting, value, message",
  [
    ("num_samples", 0, "num_samples must be at least 1, got 0"),
    ("iterations", -1, "iterations must be at least 0, got -1"),
    ("num_test", 31, "mnist: asked for 31 test examples, it has 30"),
  ],
)
def test_bad_settings_are_refused_before_any_work(runs, setting, value, message):
  data_dir, dirs = runs
  data = registry.make_dataset("mnist", str(data_dir))
  with pytest.raises(ValueError, match=f"^{message}$"):
    jmvae_tf.evaluate(jmvae_tf.load(str(dirs["jmvae"])), data, **{setting: value})


def test_evaluate_runs_writes_each_record_and_the_joined_table(runs, tmp_path):
  data_dir, dirs = runs
  data = registry.make_dataset("mnist", str(data_dir))
  loaded = [jmvae_tf.load_run(str(dirs[n])) for n in ("jmvae", "cvae_image")]
  lines = []
  outputs = [str(tmp_path / "jmvae"), str(tmp_path / "cvae")]
  records = report.evaluate_runs(
    loaded,
    data,
    outputs,
    str(tmp_path / "table"),
    log=lines.append,
    with_coherence=False,
    progress=False,
    **SETTINGS,
  )
  assert [r["model"] for r in records] == ["jmvae", "cvae"]
  for out, rec in zip(outputs, records):
    assert json.loads((tmp_path / out / "evaluation.json").read_text())["values"] == rec["values"]
  table = (tmp_path / "table" / "table1.md").read_text()
  assert "| JMVAE |" in table and "| CVAE |" in table and "(-747.1)" in table  # the paper's
  assert any(line.startswith("evaluating jmvae (") for line in lines)
