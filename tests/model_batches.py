"""Test helper: random MNIST-shaped batches, models built from their MNIST configs and the
parameter counts of the paper's MNIST networks (section 4.2), for the tests of the objectives."""

import numpy as np
import tensorflow as tf
from model_configs import mnist_config

from jmvae_tf.models import config

SEED = tf.constant([7, 11], tf.int64)


def random_batch(n=6, seed=0):
  rng = np.random.default_rng(seed)
  return {
    "image": tf.constant((rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32)),
    "label": tf.one_hot(rng.integers(0, 10, n), 10),
  }


def build(name, **kw):
  return config.build_model(mnist_config(name, **kw))


def dense(i, o):
  return i * o + o


def mlp(n):
  """D512R-D512R on an n input."""
  return dense(n, 512) + dense(512, 512)


def trainable(model):
  return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


# JMVAE's joint encoder q(z|x,w) and decoders p(x|z), p(w|z) with D = 64.
JOINT = mlp(784) + mlp(10) + 2 * dense(1024, 64)
DECODERS = mlp(64) + dense(512, 784) + mlp(64) + dense(512, 10)
