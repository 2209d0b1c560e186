"""The CelebA family end to end on a few synthetic faces (in tmp_path): train, resume,
evaluate (Table 2 and attribute accuracy), export and load with TensorFlow alone, embed;
and the BatchNorm statistics of the convolutional networks in training and inference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from tiny_runs import run_module

from jmvae_tf.core.likelihoods import GAUSSIAN_FIXED
from jmvae_tf.core.modalities import Modality
from jmvae_tf.evaluation import estimators
from jmvae_tf.models import config as config_lib
from jmvae_tf.serving import signatures
from pipelines import celeba, synthetic_faces

NUM_FACES = 120  # the paper's 90/10 split: 108 train, 12 test
NUM_TEST = NUM_FACES // 10
# Tiny sizes on top of the synthetic-faces flagfiles, so each run takes seconds.
TINY = [
  "--latent_dim=8",
  "--batch_size=20",
  "--num_train=60",
  "--eval_every=2",
  "--verbose=2",
  "--steps_per_execution=3",
]
CELEB_A_MODALITIES = (
  Modality("image", GAUSSIAN_FIXED, (64, 64, 3), "image"),
  Modality("attributes", GAUSSIAN_FIXED, (celeba.NUM_ATTRIBUTES,), "vector"),
)


def run(module: str, *args: str):
  proc = run_module(module, *args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
  directory = tmp_path_factory.mktemp("faces")
  synthetic_faces.generate(directory, NUM_FACES)
  return directory


@pytest.fixture(scope="module")
def runs(tmp_path_factory, faces):
  """JMVAE-kl trained 1 epoch then resumed to 2; JMVAE trained 1 epoch."""
  root = tmp_path_factory.mktemp("runs")
  data = [f"--data_dir={faces}"]
  kl = root / "jmvae_kl"
  common = ["--flagfile=configs/synthetic_faces_jmvae_kl.flags", *data, f"--model_dir={kl}", *TINY]
  first = run("runners.train", *common, "--epochs=1")
  second = run("runners.train", *common, "--epochs=2")
  jmvae = root / "jmvae"
  run(
    "runners.train",
    "--flagfile=configs/synthetic_faces_jmvae.flags",
    *data,
    f"--model_dir={jmvae}",
    *TINY,
    "--epochs=1",
  )
  return {"root": root, "jmvae_kl": kl, "jmvae": jmvae, "first": first, "second": second}


def test_train_then_resume(runs):
  assert (runs["jmvae_kl"] / "ckpt" / "ckpt-1.index").exists()
  out = runs["second"].stdout + runs["second"].stderr
  assert "Resuming" in out and "Epoch 2/2" in out and "Epoch 1/2" not in out
  assert (runs["jmvae_kl"] / "ckpt" / "ckpt-2.index").exists()
  run_config = json.loads((runs["jmvae_kl"] / "run.json").read_text())
  assert (run_config["dataset"], run_config["architecture"]) == ("celeb_a", "celeba_conv")


def test_evaluate_prints_table2_and_attribute_accuracy(runs, faces):
  out_dir = runs["root"] / "table"
  proc = run(
    "runners.evaluate",
    f"--model_dirs={runs['jmvae_kl']},{runs['jmvae']}",
    "--dataset=celeb_a",
    f"--data_dir={faces}",
    f"--output_dir={out_dir}",
    "--num_samples=2",
    "--batch_size=6",
    "--noprogress",
    "--classifier_epochs=1",
    "--prior_samples=20",
  )
  assert "K=40" in proc.stdout  # the paper's K for Table 2
  assert "Table 2" in proc.stdout and "| JMVAE-kl |" in proc.stdout
  assert "(-6852.0)" in proc.stdout  # the paper's number beside ours
  assert "log p(x~|w)" in proc.stdout and "log p(w~|x)" in proc.stdout  # plain on the console
  assert "log p(x~\\|w)" in (out_dir / "table2.md").read_text()  # escaped in the Markdown
  records = json.loads((out_dir / "table2.json").read_text())
  assert {r["model"] for r in records} == {"jmvae_kl", "jmvae"}
  for rec in records:
    assert rec["num_examples"] == NUM_TEST and rec["iterations"] == 40
    assert set(rec["values"]) == {
      "image|attributes",
      "attributes|image",
      "image|attributes,image",
      "attributes|attributes,image",
    }
    assert all(np.isfinite(v) for v in rec["values"].values())
    accuracy = rec["attribute_accuracy"]
    assert list(accuracy["per_attribute"]) == list(celeba.ATTRIBUTE_NAMES)
    for value in accuracy["per_attribute"].values():
      assert 0 <= value["accuracy"] <= 1 and 0.5 <= value["majority"] <= 1
    # Coherence of the faces read by a classifier of the 40 attributes trained on the images.
    assert set(rec["coherence"]["pairs"]) == {"attributes|image", "image|attributes"}
    assert rec["coherence"]["read_by"]["image"].startswith("a classifier of attributes")
  md = (runs["jmvae_kl"] / "evaluation.md").read_text()
  assert "majority baseline" in md and "| Smiling |" in md


def test_export_loads_with_tensorflow_alone_and_generates_faces(runs, tmp_path):
  run("runners.export", f"--model_dir={runs['jmvae_kl']}", f"--export_dir={tmp_path}")
  loaded = tf.saved_model.load(str(tmp_path / "jmvae_kl" / "1"))
  encode = loaded.signatures["encode"].structured_input_signature[1]
  assert encode["image"].shape.as_list() == [None, 64, 64, 3]
  assert encode["attributes"].shape.as_list() == [None, celeba.NUM_ATTRIBUTES]
  attributes = -np.ones((2, celeba.NUM_ATTRIBUTES), np.float32)
  attributes[:, celeba.ATTRIBUTE_NAMES.index("Smiling")] = 1.0
  out = loaded.signatures["generate_x_from_w"](
    attributes=tf.constant(attributes), seed=tf.constant([1, 2], tf.int64)
  )
  faces = out["image_mean"].numpy()
  assert faces.shape == (2, 64, 64, 3) and np.all(np.abs(faces) <= 1)  # tanh mean
  again = loaded.signatures["generate_x_from_w"](
    attributes=tf.constant(attributes), seed=tf.constant([1, 2], tf.int64)
  )
  np.testing.assert_array_equal(faces, again["image_mean"].numpy())


def test_embed_writes_attribute_metadata_and_a_colour_sprite(runs, faces, tmp_path):
  run(
    "runners.embed",
    f"--model_dir={runs['jmvae_kl']}",
    "--dataset=celeb_a",
    f"--data_dir={faces}",
    f"--output_dir={tmp_path}",
    f"--num_examples={NUM_TEST}",
    "--batch_size=6",
  )
  lines = (tmp_path / "metadata.tsv").read_text().splitlines()
  assert lines[0].split("\t") == list(celeba.ATTRIBUTE_NAMES)  # a header: several columns
  assert len(lines) == NUM_TEST + 1
  assert set(lines[1].split("\t")) <= {"1", "-1"}
  sprite = tf.io.decode_png((tmp_path / "sprite.png").read_bytes()).numpy()
  assert sprite.shape == (4 * 64, 4 * 64, 3)  # 12 faces on a 4x4 grid, in colour
  assert "z_from_attributes" in (tmp_path / "projector_config.pbtxt").read_text()


# --- BatchNorm: batch statistics in training, moving statistics in inference --------------


def _moving_statistics(model):
  return {v.name: v.numpy().copy() for v in model.variables if "moving_" in v.name}


def test_batchnorm_trains_its_statistics_and_inference_leaves_them():
  model = config_lib.build_model(
    config_lib.ModelConfig.make(
      "jmvae_kl",
      modalities=CELEB_A_MODALITIES,
      architecture="celeba_conv",
      dataset="celeb_a",
      latent_dim=8,
    )
  )
  model.compile(optimizer=keras.optimizers.Adam(1e-4))
  rng = np.random.default_rng(0)
  batch = {
    "image": tf.constant(rng.uniform(-1, 1, (4, 64, 64, 3)), tf.float32),
    "attributes": tf.constant(rng.choice([-1.0, 1.0], (4, 40)), tf.float32),
  }
  before = _moving_statistics(model)
  assert before  # the conv networks have BatchNorm
  model.train_step(batch)
  after = _moving_statistics(model)
  moved = [name for name in before if not np.array_equal(before[name], after[name])]
  assert len(moved) == len(before), set(before) - set(moved)

  def evaluate_all():
    out = [
      estimators.conditional_log_likelihood(model, batch, "image", ["attributes"], 2, seed=(3, 4)),
      estimators.conditional_log_likelihood(model, batch, "attributes", ["image"], 2, seed=(3, 4)),
      model.posterior(batch, ["image"])[0],
      model.posterior(batch, ["image", "attributes"])[0],
    ]
    module = signatures.ServingModule(model)
    generated = module.run(
      "generate_x_from_w",
      {"attributes": batch["attributes"], "seed": tf.constant([5, 6], tf.int64)},
    )
    out.append(generated["image_mean"])
    return [t.numpy() for t in out]

  first, second = evaluate_all(), evaluate_all()
  for a, b in zip(first, second):
    np.testing.assert_array_equal(a, b)
  final = _moving_statistics(model)
  for name, value in after.items():
    np.testing.assert_array_equal(value, final[name], err_msg=name)
