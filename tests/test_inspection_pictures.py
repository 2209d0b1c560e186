"""jmvae_tf/inspection/pictures.py: the grids of what a model generates, which modalities are
drawn (those of the image family with 1 or 3 channels, whatever their rank says), and from
which sets of the other modalities."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from jmvae_tf.core.modalities import Modality
from jmvae_tf.inspection import pictures
from jmvae_tf.models import config as config_lib


def grid_shape(rows: int, cols: int, cell: int, channels: int):
  pad = pictures.PAD
  return (rows * (cell + pad) - pad, cols * (cell + pad) - pad, channels)


def test_grid_places_each_picture_in_its_cell():
  rows = [np.full((3, 4, 5, 1), v, np.uint8) for v in (10, 20)]
  image = pictures.grid(rows, pad=1)
  assert image.shape == (1, 2 * 4 + 1, 3 * 5 + 2, 1)
  assert image[0, 0, 0, 0] == 10 and image[0, 5, 6, 0] == 20
  assert image[0, 4, 0, 0] == 255 and image[0, 0, 5, 0] == 255  # the padding between cells


def test_three_modalities_draw_each_picture_from_each_set_of_the_others():
  """With a digit, an item and a label, each picture is drawn from each set of the other two
  the model can infer z from: the label alone (one column per class), the other picture
  alone, and both (one column per held-out example, which row 1 shows)."""
  mods = (
    Modality("digit", "bernoulli", (8, 8, 1), "image"),
    Modality("fashion", "bernoulli", (8, 8, 1), "image"),
    Modality("label", "categorical", (10,)),
  )
  model = config_lib.build_model(
    config_lib.ModelConfig.make("jmvae_kl", mods, "mnist_mlp", "toy", latent_dim=4)
  )
  rng = np.random.default_rng(3)
  display = {
    "digit": tf.constant((rng.random((4, 8, 8, 1)) < 0.5).astype(np.float32)),
    "fashion": tf.constant((rng.random((4, 8, 8, 1)) < 0.5).astype(np.float32)),
    "label": tf.one_hot([0, 3, 5, 9], 10),
  }
  drawn = {p.tag: p.image for p in pictures.pictures(model, display)}
  for name, other in (("digit", "fashion"), ("fashion", "digit")):
    pair = "_".join(sorted([other, "label"]))
    tags = ("reconstructed", "from_label", f"from_{other}", f"from_{pair}", "from_prior")
    assert {f"{name}/{tag}" for tag in tags} <= set(drawn)
    assert drawn[f"{name}/from_label"].shape[1:] == grid_shape(pictures.NUM_DRAWS, 10, 8, 1)
    assert drawn[f"{name}/from_{pair}"].shape[1:] == grid_shape(1 + pictures.NUM_DRAWS, 4, 8, 1)
  assert len(drawn) == 10  # per picture: reconstructed, 3 sets, prior


def test_what_is_drawn_is_decided_by_the_family_not_the_rank():
  image = Modality("image", "bernoulli", (8, 8, 1), "image")
  assert pictures.is_picture(image)
  # A rank-3 vector (say a spectrogram) is read by an MLP and never drawn as a picture.
  assert not pictures.is_picture(Modality("spectrogram", "gaussian", (8, 8, 1), "vector"))
  # An image with other than 1 or 3 channels has no picture TensorBoard could show.
  assert not pictures.is_picture(Modality("bands", "gaussian", (8, 8, 5), "image"))
  mods = (
    Modality("spectrogram", "bernoulli", (8, 8, 1), "vector"),
    Modality("label", "categorical", (10,)),
  )
  model = config_lib.build_model(
    config_lib.ModelConfig.make("jmvae_kl", mods, "mnist_mlp", "toy", latent_dim=2)
  )
  display = {"spectrogram": tf.zeros([2, 8, 8, 1]), "label": tf.one_hot([0, 1], 10)}
  assert pictures.pictures(model, display) == []
