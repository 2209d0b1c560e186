"""jmvae_tf/networks/generic.py: the depth rule, every image size a user has, vectors, the
options (checked, recorded, rebuilt from run.json)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from jmvae_tf.core.modalities import IMAGE, Modality
from jmvae_tf.models import config as config_lib
from jmvae_tf.networks import architecture, generic


@pytest.mark.parametrize(
  "size, depth",
  [
    ((28, 28), 2),
    ((32, 32), 3),
    ((64, 64), 4),
    ((128, 128), 5),
    ((96, 64), 4),
    ((27, 27), 0),
    ((256, 256), 5),
    ((8, 8), 1),
    ((4, 4), 0),
  ],
)
def test_image_depth_rule(size, depth):
  """As many halvings as keep both sides whole and at least 4 pixels, at most 5."""
  assert generic.image_depth(*size) == depth
  h, w = size[0] // 2**depth, size[1] // 2**depth
  assert h * 2**depth == size[0] and w * 2**depth == size[1] and min(h, w) >= min(4, *size)


@pytest.mark.parametrize(
  "shape, kind",
  [
    ((28, 28, 1), "bernoulli"),
    ((32, 32, 3), "gaussian_fixed"),
    ((64, 64, 3), "gaussian"),
    ((128, 128, 1), "bernoulli"),
    ((27, 27, 1), "bernoulli"),
    ((96, 64, 3), "gaussian_fixed"),
  ],
)
def test_every_image_size_encodes_and_decodes(shape, kind):
  """Encoders read the image (and a 100-dim vector); decoders give a distribution over
  exactly the image's shape; depth=auto's convolutions are in the branch."""
  net = generic.generic_architecture(hidden="32", channels="4")
  image = Modality("image", kind, shape, IMAGE)
  vector = Modality("features", "gaussian", (100,), "vector")
  encoder = net.encoder([image, vector], latent_dim=3, name="q")
  mean, variance = encoder({"image": tf.zeros((2,) + shape), "features": tf.zeros((2, 100))})
  assert mean.shape == (2, 3) and bool(tf.reduce_all(variance > 0))
  branch = encoder.branches[encoder.modality_names.index("image")]
  convs = [layer for layer in branch.layers if "conv" in layer.name]
  assert len(convs) == generic.image_depth(*shape[:2])
  dist = net.decoder(image, "p")(tf.zeros((2, 3)))
  assert dist.mean().shape == (2,) + shape
  assert dist.log_prob(tf.zeros((2,) + shape)).shape == (2,)
  assert net.decoder(vector, "p_v")(tf.zeros((2, 3))).mean().shape == (2, 100)


def test_options_change_the_networks_and_are_checked():
  """hidden/channels/max_channels/depth change the layers; an unknown option or a depth the
  image cannot take is a ValueError naming it."""
  image = Modality("image", "bernoulli", (32, 32, 1), IMAGE)
  small = generic.generic_architecture(hidden="16x8", channels=4, max_channels=8, depth="2")
  branch = small.networks_for(image).branch(image, "b")
  branch(tf.zeros((1, 32, 32, 1)))
  assert [layer.filters for layer in branch.layers if "conv" in layer.name] == [4, 8]
  vector = Modality("v", "gaussian", (5,), "vector")
  mlp = small.networks_for(vector).branch(vector, "v")
  mlp(tf.zeros((1, 5)))
  assert [layer.units for layer in mlp.layers if hasattr(layer, "units")] == [16, 8]
  with pytest.raises(ValueError, match="hiden"):
    generic.generic_architecture(hiden="4")
  with pytest.raises(ValueError, match="hidden="):
    generic.generic_architecture(hidden="wide")
  with pytest.raises(ValueError, match="depth=4"):
    generic.generic_architecture(depth=4).networks_for(image).branch(
      Modality("image", "bernoulli", (28, 28, 1), IMAGE), "b"
    )
  with pytest.raises(ValueError, match="takes no options"):
    architecture.get_architecture("mnist_mlp", {"hidden": "8"})


def test_run_json_records_the_options_and_rebuilds_the_same_networks():
  """The options travel through run.json (canonical); a config without options writes no
  architecture_options key, as run.json always was."""
  mods = (
    Modality("image", "bernoulli", (32, 32, 3), IMAGE),
    Modality("label", "categorical", (4,)),
  )
  model = config_lib.make_model(
    "jmvae_kl",
    mods,
    architecture="generic",
    architecture_options=["hidden=24", "channels=8"],
    latent_dim=2,
  )
  config = model.config()
  # every option recorded, the defaults too: a changed default cannot change an old run
  assert config.architecture_options == (
    "channels=8",
    "depth=auto",
    "hidden=24",
    "max_channels=256",
  )
  again = config_lib.build_model(config_lib.ModelConfig.from_json(config.to_json()))
  shapes = lambda m: sorted((v.name, tuple(v.shape)) for v in m.variables)  # noqa: E731
  assert shapes(again) == shapes(model)
  plain = config_lib.ModelConfig.make("jmvae_kl", mods, "mnist_mlp", "x")
  assert "architecture_options" not in plain.to_json()
  terms = model.loss_terms(model.dummy_batch(2), tf.constant([0, 0], tf.int64), training=False)
  assert all(np.isfinite(v.numpy()).all() for v in terms.values())


def test_an_image_that_does_not_halve_is_read_by_the_mlp():
  """depth 0 (an odd size): the branch is the MLP on the pixels, not a bare flatten (a linear
  encoder)."""
  net = generic.generic_architecture(hidden="16x8")
  image = Modality("image", "bernoulli", (27, 27, 1), IMAGE)
  branch = net.networks_for(image).branch(image, "b")
  assert branch(tf.zeros((2, 27, 27, 1))).shape == (2, 8)
  assert [layer.units for layer in branch.layers if hasattr(layer, "units")] == [16, 8]
