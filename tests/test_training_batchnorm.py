"""recalibrate_batchnorm (jmvae_tf/training/batchnorm.py): BatchNorm's moving statistics set to the
average of the batch statistics, computed here with numpy; nothing read where there is no
BatchNorm layer; eager only."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from model_configs import mnist_config

from jmvae_tf.models import config
from jmvae_tf.training import batchnorm


class _Normalised(keras.Model):
  """The least a model needs for recalibrate_batchnorm: BatchNorm layers and loss_terms."""

  def __init__(self):
    super().__init__()
    self.norm = keras.layers.BatchNormalization()
    self.seen = []

  def loss_terms(self, batch, seed, training=None):
    self.seen.append(seed.numpy().tolist())
    # Used twice a pass, as the VAE-GAN's decoder and discriminator are.
    return {"loss": [self.norm(batch[k], training=training) for k in ("x", "y")]}


@pytest.mark.parametrize(
  "shape, fused, ddof",
  [((20, 5), False, 0), ((4, 3, 3, 5), True, 1)],  # dense; images, as the conv networks'
)
def test_recalibrate_batchnorm_sets_the_average_of_the_batch_statistics(shape, fused, ddof):
  """The moving mean and variance become the means over every use, in every batch, of the
  batch's mean and variance (as Keras' moving averages take it: fused, with Bessel's
  correction), computed here with numpy, whatever they were before; momentum is as it was;
  each batch gets its own seed."""
  rng = np.random.default_rng(0)
  batches = [
    {
      k: tf.constant(rng.normal(3.0 * i + j, 1.0 + i, shape), tf.float32)
      for j, k in enumerate("xy")
    }
    for i in range(4)
  ]
  model = _Normalised()
  model.norm.build((None,) + shape[1:])
  assert model.norm.fused == fused  # the path under test
  model.norm.moving_mean.assign(tf.fill([5], 1e3))  # not averaged in: replaced
  model.norm.moving_variance.assign(tf.fill([5], 1e3))
  assert batchnorm.recalibrate_batchnorm(model, iter([]), seed=3) == 0  # nothing to average
  np.testing.assert_array_equal(model.norm.moving_variance.numpy(), np.full(5, 1e3, np.float32))
  assert batchnorm.recalibrate_batchnorm(model, iter(batches), seed=3) == 4
  xs = [b[k].numpy().reshape(-1, 5) for b in batches for k in "xy"]
  np.testing.assert_allclose(
    model.norm.moving_mean.numpy(), np.mean([x.mean(0) for x in xs], 0), rtol=1e-5
  )
  np.testing.assert_allclose(
    model.norm.moving_variance.numpy(),
    np.mean([x.var(0, ddof=ddof) for x in xs], 0),
    rtol=1e-5,
  )
  assert model.norm.momentum == 0.99
  assert len({tuple(s) for s in model.seen}) == 4


def test_recalibrate_batchnorm_without_batchnorm_reads_nothing():
  model = config.build_model(mnist_config("jmvae", latent_dim=2))  # MNIST MLPs
  assert not batchnorm.batchnorm_layers(model)
  assert batchnorm.recalibrate_batchnorm(model, iter([{"never": "read"}])) == 0


def test_recalibrate_batchnorm_is_refused_inside_a_graph():
  """Each layer's uses are counted eagerly: in a tf.function it refuses before it reads."""
  model = _Normalised()
  model.norm.build((None, 5))

  @tf.function
  def traced():
    return batchnorm.recalibrate_batchnorm(model, iter([{"never": "read"}]))

  with pytest.raises(RuntimeError, match="call it eagerly"):
    traced()
  assert model.seen == []
