"""jmvae_tf/inspection/paper_figures.py: the paper's figures drawn from Python with plain
arguments (no flags): the files written, the curves' values beside them, and settings checked
as they are made."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from tiny_runs import train_mnist_runs, write_fake_mnist

import jmvae_tf
from jmvae_tf.inspection import paper_figures
from pipelines import registry


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  data_dir = write_fake_mnist(tmp_path_factory.mktemp("mnist"), num_train=200, num_test=40)
  dirs = train_mnist_runs(tmp_path_factory.mktemp("runs"), names=("jmvae", "jmvae_kl"))
  return registry.make_dataset("mnist", str(data_dir)), dirs


def test_figures_3_4_5_from_python(trained, tmp_path):
  data, dirs = trained
  models = {
    title: (key, jmvae_tf.load(str(dirs[key])))
    for title, key in (("JMVAE", "jmvae"), ("JMVAE-kl", "jmvae_kl"))
  }
  latent2 = {"JMVAE-kl": models["JMVAE-kl"][1]}  # trained with latent_dim 2
  settings = jmvae_tf.FigureSettings(
    steps=(0, 1),
    curve_steps=(0, 2),
    curve_num_test=20,
    num_samples=2,
    latent_num_test=40,
    batch_size=20,
  )
  lines = []
  jmvae_tf.draw_figures(
    models, data, str(tmp_path), ("3", "4", "5"), latent2, settings, lines.append
  )
  for name in ("figure3_jmvae", "figure3_jmvae_kl", "figure4", "figure5"):
    with Image.open(tmp_path / f"{name}.png") as picture:
      assert picture.width > 100 and picture.height > 100
  curves = json.loads((tmp_path / "figure4.json").read_text())
  assert curves["steps"] == [0, 2]
  assert set(curves["curves"]) == {"log p(x~|w)", "log p(w~|x)"}
  kl = curves["curves"]["log p(x~|w)"]["JMVAE-kl"]
  assert kl[0] == kl[1]  # JMVAE-kl needs no iterative sampling: a flat line
  assert any(line.startswith("figure 4: JMVAE log p(x~|w): K=0: ") for line in lines)
  assert list((tmp_path / "logs").glob("events.*"))  # the same images for TensorBoard


@pytest.mark.parametrize(
  "values, message",
  [
    (dict(steps=(2, 1)), r"steps must be non-negative and increasing, got \(2, 1\)"),
    (dict(curve_steps=("a",)), r"curve_steps must be integers, got \('a',\)"),
    (dict(num_faces=0), "num_faces must be >= 1 and num_random, zeta, base_face >= 0"),
    (dict(batch_size=0), "batch_size must be at least 1, got 0"),
  ],
)
def test_settings_are_checked_as_they_are_made(values, message):
  with pytest.raises(ValueError, match=f"^{message}$"):
    paper_figures.FigureSettings(**values)


def test_face_edits_name_the_data_sets_attributes():
  settings = paper_figures.FigureSettings(face_attributes=("Smiling",), face_edits=("-Smiling",))
  chosen, edits = settings.edits(["Young", "Smiling"])
  assert chosen == [("Smiling", 1, 2.0)] and [(e.name, e.value) for e in edits] == [
    ("Smiling", -1.0)
  ]
  with pytest.raises(ValueError, match="unknown attribute 'Smiling'"):
    settings.edits(["Young"])
