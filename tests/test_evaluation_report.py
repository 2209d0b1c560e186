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


# --- a caption model: its own table, per-token figures, captions read by the parser ------------


@pytest.fixture(scope="module")
def caption_model(tmp_path_factory):
  """MNIST (fake files) with captions instead of labels, and an untrained JMVAE-kl of it."""
  data_dir = write_fake_mnist(tmp_path_factory.mktemp("caption_mnist"), num_train=60, num_test=20)
  data = registry.make_dataset("mnist", str(data_dir), options=["captions=instead"])
  return data, jmvae_tf.make_model("jmvae_kl", data, latent_dim=2)


def test_a_caption_model_has_its_own_table_without_the_papers_numbers(caption_model):
  from jmvae_tf.core.modalities import Modality
  from jmvae_tf.evaluation import table
  from pipelines.mnist import mnist_modalities

  data, model = caption_model
  assert report.has_text(data.modalities) and report.has_text(model.data_modalities)
  assert not report.has_text(mnist_modalities())
  assert not report.has_text(data.modalities[:1])
  assert report.has_text([Modality("caption", "tokens", (4, 5))])  # its kind reads text
  definition = report.table_of(model, data)
  assert definition.paper == {} and definition.name == "conditional log-likelihoods on mnist"
  assert definition.columns == table.conditional_columns(["image", "caption"])
  assert definition == table.table_for("mnist", ["image", "caption"], paper=False)


def test_a_caption_models_record_has_per_token_figures(caption_model, tmp_path):
  import tensorflow as tf

  from jmvae_tf.evaluation import coherence

  data, model = caption_model
  readers = coherence.text_readers(data)
  settings = {**SETTINGS, "iwae_samples": 0}
  record = jmvae_tf.evaluate(
    model, data, progress=False, classifiers=readers, prior_samples=0, **settings
  )
  assert set(record["per_token"]) == {"caption|image", "caption|caption,image"}
  tokens = sum(float(np.sum(b["caption"])) for b in data.eval_dataset("test", 10, num_examples=20))
  for key, value in record["per_token"].items():
    assert value == pytest.approx(record["values"][key] * 20 / tokens, rel=1e-6)
    assert np.isfinite(value) and value < 0
  # the caption read by the data set's parser (the image has no classifier here)
  assert set(record["coherence"]["pairs"]) == {"caption|image"}
  assert "parsed by the data set's grammar" in record["coherence"]["read_by"]["caption"]
  definition = report.table_of(model, data)
  text = report.markdown({**record, "model_dir": "/runs/captions"}, definition)
  per_token = record["per_token"]
  assert (
    "Per token (the test captions' summed estimate over their tokens, the end of each sentence "
    f"included, padding not): log p(w~|x) {per_token['caption|image']:.4f}; "
    f"log p(w~|x,w) {per_token['caption|caption,image']:.4f}."
  ) in text
  assert "(-" not in text  # no paper number in parentheses
  assert "Per token" in report.per_token_markdown({"other": -1.5}, definition)
  assert report.per_token_markdown({"other": -1.5}, definition).endswith(": other -1.5000.")
  report.write_summaries(str(tmp_path), record, epoch=3)
  scalars = {}
  for path in tmp_path.glob("events.out.tfevents.*"):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        scalars[value.tag] = (event.step, float(tf.make_ndarray(value.tensor)))
  for key, value in per_token.items():
    step, logged = scalars[f"log_likelihood_per_token/{key}"]
    assert step == 3 and logged == pytest.approx(value, rel=1e-6)
  assert "log_likelihood/caption|image" in scalars and "coherence/caption|image" in scalars
