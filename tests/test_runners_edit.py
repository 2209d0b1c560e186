"""runners.edit end to end on a synthetic face with a model trained one step here, and every
bad input: one line, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from stream_data import StreamData
from tiny_runs import run_module

from jmvae_tf.core import options
from jmvae_tf.core.likelihoods import GAUSSIAN_FIXED
from jmvae_tf.core.modalities import Modality
from jmvae_tf.models import config
from jmvae_tf.training import driver
from pipelines import celeba, synthetic_faces
from runners import edit as edit_runner

FACES = (
  Modality("image", GAUSSIAN_FIXED, (64, 64, 3), "image"),
  Modality("attributes", GAUSSIAN_FIXED, (40,), "vector"),
)


def train_one_step(model_dir: Path, modalities, architecture: str) -> Path:
  model_config = config.ModelConfig.make(
    "jmvae_kl", modalities=modalities, architecture=architecture, dataset="celeb_a", latent_dim=4
  )
  train_config = options.TrainConfig.make(
    epochs=1, batch_size=2, warmup_epochs=0, steps_per_execution=1, strategy="default"
  )
  rng = np.random.default_rng(0)
  data = {m.name: rng.uniform(-1, 1, (2,) + m.shape).astype(np.float32) for m in modalities}
  stream = StreamData(
    modalities,
    lambda start: tf.data.Dataset.from_tensor_slices(data).repeat().batch(2),
    1,
    architecture=architecture,
  )
  driver.train(model_config, stream, str(model_dir), train_config, verbose=0)
  return model_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp("edit")
  faces = root / "faces"
  synthetic_faces.generate(faces, 2)
  vectors = (
    Modality("a", GAUSSIAN_FIXED, (5,), "vector"),
    Modality("attributes", GAUSSIAN_FIXED, (40,), "vector"),
  )
  return {
    "root": root,
    "face": faces / celeba.IMAGE_DIR / "000001.jpg",
    "model": train_one_step(root / "model", FACES, "celeba_conv"),
    "vectors": train_one_step(root / "vectors", vectors, "mnist_mlp"),
  }


def parse(**values):
  fv = flags.FlagValues()
  edit_runner.define_flags(fv)
  fv(["edit"] + [f"--{k}={v}" for k, v in values.items()])
  return fv


def run(*args):
  return run_module("runners.edit", *args)


def test_edits_a_synthetic_face_end_to_end(setup):
  out = setup["root"] / "out.png"
  proc = run(
    f"--model_dir={setup['model']}",
    f"--image={setup['face']}",
    "--set=+Smiling,-Eyeglasses",
    f"--output={out}",
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "+Smiling" in proc.stdout and "-Eyeglasses" in proc.stdout and "wrote" in proc.stdout
  picture = tf.io.decode_png(out.read_bytes()).numpy()
  assert picture.shape == (64, 3 * 64 + 2 * 2, 3)
  # The first panel is the face as the training data was prepared (the run's crop).
  expected = celeba.preprocess_image(setup["face"].read_bytes(), "paper").numpy()
  np.testing.assert_allclose(picture[:, :64] / 127.5 - 1, expected, atol=1 / 127.5)


def test_a_png_of_any_size_and_mode_is_edited(setup, tmp_path):
  rng = np.random.default_rng(1)
  pixels = rng.integers(0, 256, (301, 157, 4), dtype=np.uint8)  # RGBA, odd size
  path = tmp_path / "photo.png"
  path.write_bytes(tf.io.encode_png(pixels).numpy())
  out = tmp_path / "edited.png"
  lines = edit_runner.edit(
    parse(model_dir=setup["model"], image=path, set="Male", output=out, crop="center")
  )
  assert lines[0].startswith("+Male:") and out.exists()
  picture = tf.io.decode_png(out.read_bytes()).numpy()
  expected = celeba.preprocess_image(pixels, "center").numpy()
  np.testing.assert_allclose(picture[:, :64] / 127.5 - 1, expected, atol=1 / 127.5)


def bad_input(setup, tmp_path, **changes):
  values = dict(
    model_dir=setup["model"], image=setup["face"], set="+Smiling", output=tmp_path / "o.png"
  )
  values.update(changes)
  with pytest.raises(ValueError) as raised:
    edit_runner.edit(parse(**values))
  assert not (tmp_path / "o.png").exists()
  message = str(raised.value)
  assert "\n" not in message
  return message


def test_not_an_image(setup, tmp_path):
  text = tmp_path / "notes.jpg"
  text.write_text("not a picture")
  assert f"--image={text} is not a readable" in bad_input(setup, tmp_path, image=text)


def test_unreadable_or_missing_file(setup, tmp_path):
  missing = tmp_path / "missing.jpg"
  assert "cannot be read" in bad_input(setup, tmp_path, image=missing)
  assert "cannot be read" in bad_input(setup, tmp_path, image=tmp_path)  # a directory
  empty = tmp_path / "empty.png"
  empty.write_bytes(b"")
  assert "is empty" in bad_input(setup, tmp_path, image=empty)


def test_unknown_attribute_lists_the_valid_ones(setup, tmp_path):
  message = bad_input(setup, tmp_path, set="+Smilling")
  assert "unknown attribute 'Smilling'" in message and "Wearing_Hat" in message


def test_model_without_an_image_modality(setup, tmp_path):
  message = bad_input(setup, tmp_path, model_dir=setup["vectors"])
  assert "no image modality" in message


def test_not_a_model_dir_and_a_bad_output(setup, tmp_path):
  assert "run.json" in bad_input(setup, tmp_path, model_dir=tmp_path)
  assert ".png" in bad_input(setup, tmp_path, output=tmp_path / "o.jpg")
  assert "does not exist" in bad_input(setup, tmp_path, output=tmp_path / "nowhere" / "o.png")


def test_bad_input_exits_non_zero_with_one_line(setup, tmp_path):
  out = tmp_path / "o.png"
  proc = run(
    f"--model_dir={setup['model']}", f"--image={setup['face']}", "--set=-Nope", f"--output={out}"
  )
  assert proc.returncode == 2 and not out.exists()
  lines = proc.stderr.strip().splitlines()
  assert lines[-1].startswith("error: unknown attribute 'Nope'"), proc.stderr[-2000:]
