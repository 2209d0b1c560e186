"""The MNIST networks against the paper's architecture (section 4.2), and the decoder heads."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from jmvae_tf import networks
from jmvae_tf.likelihoods import BERNOULLI, CATEGORICAL, GAUSSIAN, GAUSSIAN_FIXED
from jmvae_tf.modalities import Modality
from pipelines.mnist import mnist_modalities

IMAGE, LABEL = mnist_modalities()


def dense(n_in, n_out):
  return n_in * n_out + n_out


def mlp512(n_in):
  """Parameters of D512R-D512R on an n_in input."""
  return dense(n_in, 512) + dense(512, 512)


def batch(n=3):
  return {"image": tf.zeros([n, 28, 28, 1]), "label": tf.zeros([n, 10])}


def dense_shapes(model):
  return [tuple(w.shape) for w in model.weights if w.name.endswith("kernel:0")]


def test_joint_encoder_is_two_branches_concatenated_with_64d_heads():
  enc = networks.mnist_encoder([IMAGE, LABEL], 64, "q")
  mean, var = enc(batch())
  assert mean.shape == (3, 64) and var.shape == (3, 64)
  assert enc.features(batch()).shape == (3, 1024)  # 512 + 512 concatenated
  assert sorted(dense_shapes(enc)) == sorted(
    [(784, 512), (512, 512), (10, 512), (512, 512), (1024, 64), (1024, 64)]
  )
  assert enc.count_params() == mlp512(784) + mlp512(10) + 2 * dense(1024, 64)


@pytest.mark.parametrize("modality, n_in", [(IMAGE, 784), (LABEL, 10)])
def test_unimodal_encoder(modality, n_in):
  enc = networks.mnist_encoder([modality], 64, "q")
  mean, var = enc(batch())
  assert mean.shape == (3, 64)
  assert enc.count_params() == mlp512(n_in) + 2 * dense(512, 64)


@pytest.mark.parametrize("modality, n_out", [(IMAGE, 784), (LABEL, 10)])
def test_decoder_shapes_and_parameters(modality, n_out):
  dec = networks.mnist_decoder(modality, "p")
  dist = dec(tf.zeros([3, 64]))
  assert isinstance(dist, tfp.distributions.Distribution)
  assert dist.batch_shape == (3,) and tuple(dist.event_shape) == modality.shape
  assert dec.count_params() == mlp512(64) + dense(512, n_out)


def test_two_dimensional_latent_for_figure_5():
  enc = networks.mnist_encoder([IMAGE, LABEL], 2, "q")
  assert enc(batch())[0].shape == (3, 2)


def test_conditional_and_hierarchy_layers():
  cond = networks.mnist_conditional(64, "p_z1")
  mean, var = cond(tf.zeros([3, 64]))
  assert mean.shape == (3, 64) and (var.numpy() > 0).all()
  assert cond.count_params() == mlp512(64) + 2 * dense(512, 64)
  top = networks.mnist_top_features("h2")
  assert top(tf.zeros([3, 1024])).shape == (3, 512)


def test_bernoulli_head_log_prob_matches_hand_computation():
  dec = networks.mnist_decoder(IMAGE, "p")
  z = tf.random.stateless_normal([2, 64], seed=[0, 1])
  dist = dec(z)
  x = tf.cast(tf.random.stateless_uniform([2, 28, 28, 1], seed=[0, 2]) < 0.5, tf.float32)
  p = dist.mean().numpy().reshape(2, -1)
  xs = x.numpy().reshape(2, -1)
  hand = (xs * np.log(p) + (1 - xs) * np.log1p(-p)).sum(-1)
  np.testing.assert_allclose(dist.log_prob(x).numpy(), hand, rtol=1e-4)


def test_categorical_head_log_prob_is_log_softmax_of_the_true_class():
  dec = networks.mnist_decoder(LABEL, "p")
  dist = dec(tf.random.stateless_normal([4, 64], seed=[3, 4]))
  probs = dist.mean().numpy()
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
  labels = tf.one_hot([0, 3, 5, 9], 10)
  np.testing.assert_allclose(
    dist.log_prob(labels).numpy(), np.log(probs[np.arange(4), [0, 3, 5, 9]]), rtol=1e-4
  )


@pytest.mark.parametrize("kind", [GAUSSIAN, GAUSSIAN_FIXED])
def test_gaussian_heads(kind):
  m = Modality("attributes", kind, (40,))
  head = networks.distribution_head(m)
  dist = head(tf.zeros([5, 16]))
  assert dist.batch_shape == (5,) and dist.event_shape == (40,)
  if kind == GAUSSIAN_FIXED:
    # zero input -> zero tanh mean, unit variance: log N(0; 0, 1) per element
    np.testing.assert_allclose(
      dist.log_prob(tf.zeros([5, 40])).numpy(), 40 * -0.5 * np.log(2 * np.pi), rtol=1e-5
    )


def test_fixed_variance_head_with_another_variance():
  """variance=v: N(tanh(params), v) per element, log-density by hand; v <= 0 refused."""
  m = Modality("attributes", GAUSSIAN_FIXED, (6,))
  params = tf.reshape(tf.linspace(-2.0, 2.0, 12), [2, 6])
  dist = m.likelihood.distribution_layer(m.shape, variance=0.25)(params)
  x = tf.ones([2, 6])
  mean = np.tanh(params.numpy())
  np.testing.assert_allclose(dist.stddev().numpy(), 0.5)
  by_hand = np.sum(-0.5 * np.log(2 * np.pi * 0.25) - (1.0 - mean) ** 2 / (2 * 0.25), axis=1)
  np.testing.assert_allclose(dist.log_prob(x).numpy(), by_hand, rtol=1e-5)
  with pytest.raises(ValueError, match="variance must be positive"):
    m.likelihood.distribution_layer(m.shape, variance=0.0)


def test_bad_modalities_are_refused():
  with pytest.raises(ValueError, match="kind"):
    Modality("x", "poisson", (3,))
  with pytest.raises(ValueError, match="shape"):
    Modality("x", BERNOULLI, (0,))
  with pytest.raises(ValueError, match="num_classes"):
    networks.distribution_head(Modality("x", CATEGORICAL, (2, 5)))
  with pytest.raises(ValueError, match="unknown architecture"):
    networks.get_architecture("resnet")
