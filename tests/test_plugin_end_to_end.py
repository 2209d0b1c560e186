"""A plug-in from outside the package (tests/count_plugin.py: a Poisson likelihood kind, a
"counts" network family with its networks, a data set of counts and classes) through every
runner: runners.train trains it (--plugins), runners.evaluate evaluates it and runners.export
exports it with no --plugins (run.json names the module), its run loads back in Python, and
where the module cannot be imported a reader of the run (they all read it through
run_dir.load_run) and --plugins say so in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import count_plugin
import numpy as np
import pytest
import tensorflow as tf
from tiny_runs import REPOSITORY_ROOT

import jmvae_tf
from runners import flagutil

TESTS = Path(__file__).resolve().parent
EPOCHS = 3


def run(*args, plugin_on_path=True):
  """`python -m args` from the repository root; the plug-in importable or not."""
  path = [str(TESTS)] if plugin_on_path else []
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join(path))
  return subprocess.run(
    [sys.executable, "-m", *args],
    cwd=REPOSITORY_ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  root = tmp_path_factory.mktemp("plugin")
  data_dir = count_plugin.write(root / "data")
  model_dir = root / "run"
  done = run(
    "runners.train",
    "--plugins=count_plugin",
    "--dataset=counts",
    f"--data_dir={data_dir}",
    "--model=jmvae_kl",
    f"--model_dir={model_dir}",
    f"--epochs={EPOCHS}",
    "--warmup_epochs=1",
    "--batch_size=50",
    "--latent_dim=4",
    "--eval_every=1",
    "--verbose=2",
  )
  assert done.returncode == 0, done.stderr[-3000:]
  return {"root": root, "data": data_dir, "run": model_dir, "log": done.stdout}


def test_the_runner_trains_the_plugins_model_and_records_the_plugin(trained):
  losses = [
    float(line.split("val_loss: ")[1].split(" ")[0])
    for line in trained["log"].splitlines()
    if "val_loss: " in line
  ]
  assert len(losses) == EPOCHS and losses[-1] < losses[0], losses
  run_json = json.loads((trained["run"] / "run.json").read_text())
  assert run_json["dataset"] == "counts"
  assert [m["kind"] for m in run_json["modalities"]] == ["poisson", "categorical"]
  assert run_json["plugins"] == {
    "count_plugin": [
      "data set counts",
      "family networks counts",
      "likelihood kind poisson",
      "network family counts",
    ]
  }
  assert "--plugins=count_plugin\n" in (trained["run"] / "flags.txt").read_text()


def test_the_evaluation_runner_reads_the_plugin_from_run_json(trained):
  done = run(
    "runners.evaluate",
    f"--model_dir={trained['run']}",
    f"--data_dir={trained['data']}",
    "--iterations=2",
    "--num_samples=2",
    "--noprogress",
  )
  assert done.returncode == 0, done.stderr[-3000:]
  record = json.loads((trained["run"] / "evaluation.json").read_text())
  assert set(record["values"]) == {
    "counts|label",
    "label|counts",
    "counts|counts,label",
    "label|counts,label",
  }
  assert all(np.isfinite(v) for v in record["values"].values())
  # The Poisson log-likelihood of the counts given their class, against the independent
  # ceiling of the true rates (the model cannot beat it by much, and it is no vague guess).
  assert -60 < record["values"]["counts|label"] < 0
  assert set(record["coherence"]["pairs"]) == {"label|counts"}  # the class, read off counts
  assert record["coherence"]["read_by"] == {"label": "its argmax"}


def test_the_export_runner_serves_poisson_rates_and_counts(trained):
  export_dir = trained["root"] / "export"
  done = run("runners.export", f"--model_dir={trained['run']}", f"--export_dir={export_dir}")
  assert done.returncode == 0, done.stderr[-3000:]
  loaded = tf.saved_model.load(str(export_dir / "jmvae_kl" / "1"))
  labels = tf.one_hot([0, 3, 7], 10)
  out = loaded.signatures["generate_x_from_w"](label=labels, seed=tf.constant([1, 2], tf.int64))
  assert out["counts_rate"].shape == (3, count_plugin.NUM_BINS)
  assert np.all(out["counts_rate"].numpy() > 0)
  sample = out["counts_sample"].numpy()
  assert np.all(sample >= 0) and np.all(sample == np.round(sample))
  with pytest.raises(tf.errors.InvalidArgumentError, match="counts must be non-negative"):
    loaded.signatures["encode_counts"](counts=-tf.ones([1, count_plugin.NUM_BINS]))
  extra = json.loads((export_dir / "jmvae_kl" / "1" / "assets.extra" / "run.json").read_text())
  assert "count_plugin" in extra["plugins"]


def test_the_run_loads_back_in_python_and_infers_from_each_modality(trained):
  model = jmvae_tf.load(str(trained["run"]))
  assert model.config().dataset == "counts" and model.modality_names == ("counts", "label")
  data = count_plugin.CountsDataSet(str(trained["data"]))
  batch = next(iter(data.eval_dataset("test", 8)))
  for given in (("counts",), ("label",), ("counts", "label")):
    mean, variance = model.posterior(batch, given)
    assert mean.shape == (8, 4) and np.all(variance.numpy() > 0)
  rate = model.generated_mean(batch, "counts", ["label"])
  assert rate.shape == (8, count_plugin.NUM_BINS)


def test_without_the_plugin_a_reader_of_the_run_says_which_module_is_missing(trained):
  done = run(
    "runners.evaluate",
    f"--model_dir={trained['run']}",
    f"--data_dir={trained['data']}",
    plugin_on_path=False,
  )
  assert done.returncode == 2
  assert done.stderr.strip().splitlines() == [
    f"error: --model_dir={trained['run']}: run.json needs the plug-in module 'count_plugin' "
    "(data set counts, family networks counts, likelihood kind poisson, network family "
    "counts), which cannot be imported (ModuleNotFoundError: No module named "
    "'count_plugin'); put it on the Python path"
  ]


def test_a_plugin_the_runners_cannot_import_is_one_line(capsys):
  with pytest.raises(SystemExit) as stopped:
    flagutil.import_plugins(["train", "--model_dir=x", "--plugins=count_plugin,no_such_plugin"])
  assert stopped.value.code == 2
  assert capsys.readouterr().err.strip().splitlines() == [
    "error: --plugins needs the plug-in module 'no_such_plugin', which cannot be imported "
    "(ModuleNotFoundError: No module named 'no_such_plugin'); put it on the Python path"
  ]
