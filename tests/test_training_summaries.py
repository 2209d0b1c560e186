"""TensorBoard summaries of a tiny training run, read back from its event files: the
pictures each model can draw (tags and shapes), the captions of a model with text (and none
without), the HParams session, and kl_weight once per epoch."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from model_configs import mnist_config
from PIL import Image
from stream_data import StreamData
from tensorboard.plugins.hparams import metadata as hparams_metadata

from jmvae_tf.core import options
from jmvae_tf.core.likelihoods import BERNOULLI, GAUSSIAN_FIXED, TOKENS
from jmvae_tf.core.modalities import Modality
from jmvae_tf.core.text import Vocabulary
from jmvae_tf.inspection import pictures as pictures_lib
from jmvae_tf.models import config as config_lib
from jmvae_tf.training import callbacks, driver, summaries
from pipelines.captions import DIGITS

BATCH = 8
EPOCHS = 2
MNIST_CELL = 28
FACE_CELL = 16
FACES = (
  Modality("image", GAUSSIAN_FIXED, (16, 16, 3), "image"),
  Modality("attributes", GAUSSIAN_FIXED, (5,), "vector"),
)


# MNIST's digits with captions of their class instead of labels ("a handwritten seven").
DIGIT_CAPTIONS = Vocabulary.build(DIGITS.corpus(), DIGITS.max_words + 1)
CAPTIONED = (
  Modality("image", BERNOULLI, (28, 28, 1), "image"),
  Modality("caption", TOKENS, DIGIT_CAPTIONS.shape, "sequence", DIGIT_CAPTIONS.tokens),
)


def grid_shape(rows: int, cols: int, cell: int, channels: int):
  pad = pictures_lib.PAD
  return (rows * (cell + pad) - pad, cols * (cell + pad) - pad, channels)


def mnist_like(n: int, rng):
  return {
    "image": (rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32),
    "label": np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)],
  }


def faces_like(n: int, rng):
  return {
    "image": rng.uniform(-1, 1, (n, 16, 16, 3)).astype(np.float32),
    "attributes": rng.choice([-1.0, 1.0], (n, 5)).astype(np.float32),
  }


def captioned_like(n: int, rng):
  """Random digits, each with a caption of a random class under a random template."""
  texts = [DIGITS.caption(c, k) for c, k in zip(rng.integers(0, 10, n), rng.integers(0, 7, n))]
  images = (rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32)
  return {"image": images, "caption": DIGIT_CAPTIONS.encoder()(tf.constant(texts)).numpy()}, texts


def train_tiny(model_dir, model_config, data, epochs=EPOCHS, eval_every=1, warmup_epochs=2):
  train_config = options.TrainConfig.make(
    epochs=epochs,
    batch_size=BATCH,
    warmup_epochs=warmup_epochs,
    eval_every=eval_every,
    steps_per_execution=1,
    strategy="default",
  )
  stream = StreamData(
    model_config.modalities,
    lambda start: (
      tf.data.Dataset.from_tensor_slices(data).repeat().batch(BATCH, drop_remainder=True)
    ),
    2,
    held_out=tf.data.Dataset.from_tensor_slices(data).batch(BATCH),
    architecture=model_config.architecture,
  )
  driver.train(model_config, stream, str(model_dir), train_config, verbose=0)
  return train_config


def read_events(directory):
  """[(step, tag, value proto)] of every event file under `directory` (not its subfolders)."""
  found = []
  for path in sorted(tf.io.gfile.glob(str(directory / "events.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        found.append((event.step, value.tag, value))
  return found


def texts(model_dir):
  """{tag: {step: the Markdown}} of the text summaries under logs/train."""
  out = {}
  for step, tag, value in read_events(model_dir / "logs" / "train"):
    if value.metadata.plugin_data.plugin_name == "text":
      out.setdefault(tag, {})[step] = tf.make_ndarray(value.tensor).item().decode("utf-8")
  return out


def pictures(model_dir):
  """{tag: {step: decoded image [H, W, C]}} of the image summaries under logs/train."""
  out = {}
  for step, tag, value in read_events(model_dir / "logs" / "train"):
    if value.metadata.plugin_data.plugin_name == "images":
      width, height, png = tf.make_ndarray(value.tensor)[:3]
      image = np.array(Image.open(io.BytesIO(png)))
      image = image[..., np.newaxis] if image.ndim == 2 else image
      assert image.shape[:2] == (int(height), int(width))
      out.setdefault(tag, {})[step] = image
  return out


@pytest.fixture(scope="module")
def jmvae_kl_run(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("jmvae_kl")
  model_config = mnist_config("jmvae_kl", latent_dim=4, alpha=0.5)
  train_config = train_tiny(
    model_dir, model_config, mnist_like(4 * BATCH, np.random.default_rng(0))
  )
  return model_dir, model_config, train_config


def test_mnist_pictures_digits_from_each_label_and_reconstructions(jmvae_kl_run):
  model_dir = jmvae_kl_run[0]
  found = pictures(model_dir)
  assert set(found) == {"image/reconstructed", "image/from_label", "image/from_prior"}
  for steps in found.values():
    assert sorted(steps) == [0, 1]  # every epoch (eval_every=1), step = epoch index
  # Held-out row, then from (image, label) and from the image alone (JMVAE-kl's q(z|x)).
  assert found["image/reconstructed"][1].shape == grid_shape(3, summaries.NUM_EXAMPLES, 28, 1)
  assert found["image/from_label"][1].shape == grid_shape(pictures_lib.NUM_DRAWS, 10, 28, 1)
  assert found["image/from_prior"][1].shape == grid_shape(
    pictures_lib.NUM_DRAWS, summaries.NUM_EXAMPLES, 28, 1
  )
  # Row 1 of the reconstructions is the held-out batch itself (binary pixels: 0 or 255).
  first_row = found["image/reconstructed"][1][:28, :28, 0]
  probe = mnist_like(4 * BATCH, np.random.default_rng(0))["image"][0, ..., 0]
  np.testing.assert_array_equal(first_row, np.round(probe * 255))


def test_hparams_session_holds_the_run_settings(jmvae_kl_run):
  model_dir, model_config, train_config = jmvae_kl_run
  sessions = [
    v
    for _, tag, v in read_events(model_dir / "logs")
    if tag == hparams_metadata.SESSION_START_INFO_TAG
  ]
  assert len(sessions) == 1
  info = hparams_metadata.parse_session_start_info_plugin_data(
    sessions[0].metadata.plugin_data.content
  )
  logged = {
    k: (v.string_value if v.HasField("string_value") else v.number_value)
    for k, v in info.hparams.items()
  }
  assert logged["model"] == "jmvae_kl" and logged["dataset"] == "mnist"
  assert logged["latent_dim"] == 4 and logged["alpha"] == 0.5
  assert logged["warmup_epochs"] == train_config.fixed.warmup_epochs == 2
  assert logged["batch_size"] == BATCH
  assert logged["learning_rate"] == pytest.approx(train_config.run.learning_rate)
  assert "clipnorm" not in logged  # None: not a value the dashboard can show
  # The metrics TensorBoard pairs with it: the final losses of train/ and validation/.
  for group in ("train", "validation"):
    assert "epoch_loss" in {tag for _, tag, _ in read_events(model_dir / "logs" / group)}


def test_kl_weight_is_logged_once_per_epoch(jmvae_kl_run):
  model_dir = jmvae_kl_run[0]
  logged = []
  for group in ("", "train", "validation"):
    directory = model_dir / "logs" / group if group else model_dir / "logs"
    logged += [(group, tag, step) for step, tag, _ in read_events(directory) if "kl_weight" in tag]
  assert sorted(logged) == [("train", "epoch_kl_weight", 0), ("train", "epoch_kl_weight", 1)]
  values = [
    float(tf.make_ndarray(v.tensor))
    for _, tag, v in read_events(model_dir / "logs" / "train")
    if tag == "epoch_kl_weight"
  ]
  assert values == [callbacks.warmup_weight(e, 2) for e in range(EPOCHS)]


@pytest.mark.parametrize(
  "model, options, expected",
  [
    # One-way models draw only their own direction and have no unconditional prior.
    ("cvae", {}, {"image/reconstructed", "image/from_label"}),
    ("cmma", {}, {"image/reconstructed", "image/from_label"}),
    # Label given image: nothing picture-shaped is generated.
    ("cvae", {"target": "label", "condition": "image"}, set()),
  ],
)
def test_one_way_models_draw_only_what_they_generate(tmp_path, model, options, expected):
  model_config = mnist_config(model, latent_dim=4, **options)
  train_tiny(tmp_path, model_config, mnist_like(4 * BATCH, np.random.default_rng(1)), epochs=1)
  found = pictures(tmp_path)
  assert set(found) == expected
  if expected:  # no q(z|image) alone: held-out row and one reconstruction
    assert found["image/reconstructed"][0].shape == grid_shape(2, summaries.NUM_EXAMPLES, 28, 1)


def test_faces_from_the_attributes_of_held_out_faces(tmp_path):
  # JMVAE imputes the missing image by iterative sampling; the faces' modalities and
  # the MNIST networks keep the run tiny (the pictures depend only on the modalities).
  model_config = config_lib.ModelConfig.make("jmvae", FACES, "mnist_mlp", "celeb_a", latent_dim=4)
  data = faces_like(4 * BATCH, np.random.default_rng(2))
  train_tiny(tmp_path, model_config, data, epochs=3, eval_every=2)
  found = pictures(tmp_path)
  assert set(found) == {"image/reconstructed", "image/from_attributes", "image/from_prior"}
  for steps in found.values():
    assert sorted(steps) == [1, 2]  # every 2 epochs, and after the last
  n = summaries.NUM_EXAMPLES
  faces = found["image/from_attributes"][2]
  assert faces.shape == grid_shape(1 + pictures_lib.NUM_DRAWS, n, FACE_CELL, 3)
  # Row 1: the held-out faces whose attributes the rows below are drawn from.
  expected = np.round((data["image"][:n] + 1) / 2 * 255).astype(np.uint8)
  np.testing.assert_array_equal(faces[:FACE_CELL, :FACE_CELL], expected[0])
  assert found["image/reconstructed"][2].shape == grid_shape(3, n, FACE_CELL, 3)


def test_no_text_is_written_for_a_model_without_text(jmvae_kl_run):
  assert texts(jmvae_kl_run[0]) == {}  # image and label: no caption, no text summary


def test_captions_are_written_as_text_with_the_pictures(tmp_path):
  # Small generic networks keep the run short: the captions depend only on the modalities.
  model_config = config_lib.ModelConfig.make(
    "jmvae_kl", CAPTIONED, "generic", "mnist", {"hidden": "32"}, latent_dim=4
  )
  data, captions = captioned_like(4 * BATCH, np.random.default_rng(3))
  train_tiny(tmp_path, model_config, data, epochs=1)
  found = texts(tmp_path)
  assert set(found) == {"caption/generated"} and set(found["caption/generated"]) == {0}
  table = found["caption/generated"][0].split("\n\n")[0].splitlines()
  assert table[0] == "| # | true caption | from all, mean z | from image |"
  rows = [line.strip("|").split("|") for line in table[2:]]
  assert [r[1].strip() for r in rows] == captions[: summaries.NUM_EXAMPLES]  # held-out examples
  # The pictures are there too, of the image given the caption.
  assert "image/from_caption" in pictures(tmp_path)
