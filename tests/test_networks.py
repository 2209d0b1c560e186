"""The networks (jmvae_tf/networks/blocks.py) against the paper's architectures (section 4.2): the
MNIST MLPs and their decoder heads, then the CelebA convolutional blocks.

Parameter counts are computed by hand from the layer sizes; batches are tiny so the whole file
stays fast on a CPU.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

from jmvae_tf.core.likelihoods import BERNOULLI, CATEGORICAL, GAUSSIAN, GAUSSIAN_FIXED
from jmvae_tf.core.modalities import Modality
from jmvae_tf.networks import architecture, blocks, celeba, mnist
from pipelines.mnist import mnist_modalities


def dense(n_in, n_out):
  return n_in * n_out + n_out


def kernel_shapes(model):
  return [tuple(w.shape) for w in model.weights if w.name.endswith("kernel:0")]


# --- MNIST_MLP ---------------------------------------------------------------------------------

IMAGE, LABEL = mnist_modalities()


def mlp512(n_in):
  """Parameters of D512R-D512R on an n_in input."""
  return dense(n_in, 512) + dense(512, 512)


def batch(n=3):
  return {"image": tf.zeros([n, 28, 28, 1]), "label": tf.zeros([n, 10])}


def test_mnist_joint_encoder_is_two_branches_concatenated_with_64d_heads():
  enc = mnist.MNIST_MLP.encoder([IMAGE, LABEL], 64, "q")
  mean, var = enc(batch())
  assert mean.shape == (3, 64) and var.shape == (3, 64)
  assert enc.features(batch()).shape == (3, 1024)  # 512 + 512 concatenated
  assert sorted(kernel_shapes(enc)) == sorted(
    [(784, 512), (512, 512), (10, 512), (512, 512), (1024, 64), (1024, 64)]
  )
  assert enc.count_params() == mlp512(784) + mlp512(10) + 2 * dense(1024, 64)


def test_branch_outputs_stand_in_for_the_branches_they_cover():
  enc = mnist.MNIST_MLP.encoder([IMAGE, LABEL], 8, "q")
  rng = np.random.default_rng(0)
  inputs = {
    "image": tf.constant(rng.random((3, 28, 28, 1)), tf.float32),
    "label": tf.one_hot([1, 2, 3], 10),
  }
  known = enc.branch_outputs(inputs, ["label"])
  assert list(known) == ["label"] and known["label"].shape == (3, 512)
  want = enc.features(inputs).numpy()
  np.testing.assert_array_equal(enc.features(inputs, branch_outputs=known).numpy(), want)
  # What stands in is what is used: the label's input is not read again.
  no_label = {"image": inputs["image"], "label": tf.fill([3, 10], np.nan)}
  np.testing.assert_array_equal(enc.features(no_label, branch_outputs=known).numpy(), want)


@pytest.mark.parametrize("modality, n_in", [(IMAGE, 784), (LABEL, 10)])
def test_mnist_unimodal_encoder(modality, n_in):
  enc = mnist.MNIST_MLP.encoder([modality], 64, "q")
  mean, var = enc(batch())
  assert mean.shape == (3, 64)
  assert enc.count_params() == mlp512(n_in) + 2 * dense(512, 64)


@pytest.mark.parametrize("modality, n_out", [(IMAGE, 784), (LABEL, 10)])
def test_mnist_decoder_shapes_and_parameters(modality, n_out):
  dec = mnist.mnist_decoder(modality, "p")
  dist = dec(tf.zeros([3, 64]))
  assert isinstance(dist, tfp.distributions.Distribution)
  assert dist.batch_shape == (3,) and tuple(dist.event_shape) == modality.shape
  assert dec.count_params() == mlp512(64) + dense(512, n_out)


def test_two_dimensional_latent_for_figure_5():
  enc = mnist.MNIST_MLP.encoder([IMAGE, LABEL], 2, "q")
  assert enc(batch())[0].shape == (3, 2)


def test_mnist_conditional_and_hierarchy_layers():
  cond = mnist.mnist_conditional(64, "p_z1")
  mean, var = cond(tf.zeros([3, 64]))
  assert mean.shape == (3, 64) and (var.numpy() > 0).all()
  assert cond.count_params() == mlp512(64) + 2 * dense(512, 64)
  top = mnist.mnist_top_features("h2")
  assert top(tf.zeros([3, 1024])).shape == (3, 512)


def test_bernoulli_head_log_prob_matches_hand_computation():
  dec = mnist.mnist_decoder(IMAGE, "p")
  z = tf.random.stateless_normal([2, 64], seed=[0, 1])
  dist = dec(z)
  x = tf.cast(tf.random.stateless_uniform([2, 28, 28, 1], seed=[0, 2]) < 0.5, tf.float32)
  p = dist.mean().numpy().reshape(2, -1)
  xs = x.numpy().reshape(2, -1)
  hand = (xs * np.log(p) + (1 - xs) * np.log1p(-p)).sum(-1)
  np.testing.assert_allclose(dist.log_prob(x).numpy(), hand, rtol=1e-4)


def test_categorical_head_log_prob_is_log_softmax_of_the_true_class():
  dec = mnist.mnist_decoder(LABEL, "p")
  dist = dec(tf.random.stateless_normal([4, 64], seed=[3, 4]))
  probs = dist.mean().numpy()
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
  labels = tf.one_hot([0, 3, 5, 9], 10)
  np.testing.assert_allclose(
    dist.log_prob(labels).numpy(), np.log(probs[np.arange(4), [0, 3, 5, 9]]), rtol=1e-4
  )


@pytest.mark.parametrize("kind", [GAUSSIAN, GAUSSIAN_FIXED])
def test_gaussian_heads(kind):
  m = Modality("attributes", kind, (40,), "vector")
  head = blocks.distribution_head(m)
  dist = head(tf.zeros([5, 16]))
  assert dist.batch_shape == (5,) and dist.event_shape == (40,)
  if kind == GAUSSIAN_FIXED:
    # zero input -> zero tanh mean, unit variance: log N(0; 0, 1) per element
    np.testing.assert_allclose(
      dist.log_prob(tf.zeros([5, 40])).numpy(), 40 * -0.5 * np.log(2 * np.pi), rtol=1e-5
    )


def test_an_unknown_architecture_is_refused():
  with pytest.raises(ValueError, match="unknown architecture"):
    architecture.get_architecture("resnet")


# --- CELEBA_CONV -------------------------------------------------------------------------------

FACE = Modality("image", GAUSSIAN_FIXED, (64, 64, 3), "image")
ATTRIBUTES = Modality("attributes", GAUSSIAN_FIXED, (40,), "vector")
LATENT = 128
B = 2


def conv(c_in, c_out, k=4):
  """Conv2D or Conv2DTranspose: kernel plus bias."""
  return k * k * c_in * c_out + c_out


def bn(c):
  """gamma, beta (trainable) and the moving mean and variance."""
  return 4 * c


# C64R-C128BR-C256BR-C256BR-F on 64x64x3: 4x4x256 = 4096 features.
IMAGE_BRANCH = (
  conv(3, 64) + conv(64, 128) + bn(128) + conv(128, 256) + bn(256) + conv(256, 256) + bn(256)
)
# D512R-D512BR on the 40 attributes.
ATTRIBUTE_BRANCH = dense(40, 512) + dense(512, 512) + bn(512)
HEADS = 2 * dense(1024, LATENT)

EXPECTED_PARAMS = {
  # (C...-F, D512R-D512BR)-D1024R, D128 heads
  "joint": IMAGE_BRANCH + ATTRIBUTE_BRANCH + dense(4096 + 512, 1024) + HEADS,
  "q(z|x)": IMAGE_BRANCH + dense(4096, 1024) + HEADS,
  "q(z|w)": ATTRIBUTE_BRANCH + dense(512, 1024) + HEADS,
  # D4096R-DC256BR-DC128BR-DC64BR-DC3
  "p(x|z)": (
    dense(LATENT, 4096)
    + conv(256, 256)
    + bn(256)
    + conv(256, 128)
    + bn(128)
    + conv(128, 64)
    + bn(64)
    + conv(64, 3)
  ),
  # D4096R-D512BR-D40
  "p(w|z)": dense(LATENT, 4096) + dense(4096, 512) + bn(512) + dense(512, 40),
}
# Moving mean and variance of every BN layer: the only non-trainable weights.
EXPECTED_MOVING = {
  "joint": 2 * (128 + 256 + 256 + 512),
  "q(z|x)": 2 * (128 + 256 + 256),
  "q(z|w)": 2 * 512,
  "p(x|z)": 2 * (256 + 128 + 64),
  "p(w|z)": 2 * 512,
}


def face_batch(n=B, seed=0):
  image = tf.random.stateless_uniform([n, 64, 64, 3], seed=[seed, 1], minval=-1.0, maxval=1.0)
  attributes = tf.sign(tf.random.stateless_normal([n, 40], seed=[seed, 2]))
  return {"image": image, "attributes": attributes}


def build_celeba(which):
  """Builds one of the five networks and returns (network, its output on a dummy input)."""
  arch = celeba.CELEBA_CONV
  encoders = {"joint": [FACE, ATTRIBUTES], "q(z|x)": [FACE], "q(z|w)": [ATTRIBUTES]}
  if which in encoders:
    net = arch.encoder(encoders[which], LATENT, "q")
    return net, net(face_batch())
  net = arch.decoder(FACE if which == "p(x|z)" else ATTRIBUTES, "p")
  return net, net(tf.random.stateless_normal([B, LATENT], seed=[0, 3]))


def moving_statistics(model):
  return [w.numpy().copy() for w in model.non_trainable_weights]


def test_both_architectures_are_registered():
  assert architecture.get_architecture("celeba_conv") is celeba.CELEBA_CONV
  assert architecture.get_architecture("mnist_mlp") is mnist.MNIST_MLP


@pytest.mark.parametrize("which", ["joint", "q(z|x)", "q(z|w)"])
def test_celeba_encoder_shapes_and_parameters(which):
  enc, (mean, var) = build_celeba(which)
  assert mean.shape == (B, LATENT) and var.shape == (B, LATENT)
  assert (var.numpy() > 0).all()
  assert enc.features(face_batch()).shape == (B, 1024)  # the D1024R trunk
  assert enc.count_params() == EXPECTED_PARAMS[which]
  assert sum(int(np.prod(w.shape)) for w in enc.non_trainable_weights) == EXPECTED_MOVING[which]


def test_celeba_image_branch_layers():
  enc, _ = build_celeba("q(z|x)")
  convs = [(4, 4, 3, 64), (4, 4, 64, 128), (4, 4, 128, 256), (4, 4, 256, 256)]
  assert kernel_shapes(enc)[:4] == convs
  # BN after every conv but the first: 128 + 256 + 256 channels.
  bns = [w.shape[0] for w in enc.weights if "moving_mean" in w.name]
  assert bns == [128, 256, 256]


@pytest.mark.parametrize("which, modality", [("p(x|z)", FACE), ("p(w|z)", ATTRIBUTES)])
def test_celeba_decoder_shapes_and_parameters(which, modality):
  dec, dist = build_celeba(which)
  assert isinstance(dist, tfp.distributions.Distribution)
  assert dist.batch_shape == (B,) and tuple(dist.event_shape) == modality.shape
  mean = dist.mean().numpy()
  assert mean.shape == (B,) + modality.shape
  assert np.abs(mean).max() <= 1.0  # tanh mean
  x = face_batch()[modality.name]
  log_prob = dist.log_prob(x)
  assert log_prob.shape == (B,)
  # Variance fixed to 1: log N(x; mean, 1) summed by hand.
  hand = (-0.5 * np.log(2 * np.pi) - 0.5 * (x.numpy() - mean) ** 2).reshape(B, -1).sum(-1)
  np.testing.assert_allclose(log_prob.numpy(), hand, rtol=1e-5)
  assert dec.count_params() == EXPECTED_PARAMS[which]
  assert sum(int(np.prod(w.shape)) for w in dec.non_trainable_weights) == EXPECTED_MOVING[which]


def test_celeba_image_decoder_layers():
  dec, _ = build_celeba("p(x|z)")
  # Conv2DTranspose kernels are (k, k, out, in).
  assert kernel_shapes(dec) == [
    (128, 4096),
    (4, 4, 256, 256),
    (4, 4, 128, 256),
    (4, 4, 64, 128),
    (4, 4, 3, 64),
  ]
  assert not [w for w in dec.head.weights if w.name.endswith("kernel:0") and len(w.shape) == 2]


@pytest.mark.parametrize("which", ["joint", "p(x|z)"])
def test_celeba_batch_norm_follows_training(which):
  net, _ = build_celeba(which)
  z = tf.random.stateless_normal([B, LATENT], seed=[5, 0])
  inputs = face_batch(seed=5) if which == "joint" else z

  def out(training):
    result = net(inputs, training=training)
    return result[0].numpy() if which == "joint" else result.mean().numpy()

  before = moving_statistics(net)
  first, second = out(False), out(False)
  np.testing.assert_array_equal(first, second)
  for a, b in zip(before, moving_statistics(net)):
    np.testing.assert_array_equal(a, b)
  out(True)
  after = moving_statistics(net)
  assert all(not np.array_equal(a, b) for a, b in zip(before, after))


def test_celeba_conditional_and_hierarchy_layers():
  cond = celeba.CELEBA_CONV.conditional(LATENT, "p_z1")
  mean, var = cond(tf.zeros([B, LATENT]))
  assert mean.shape == (B, LATENT) and (var.numpy() > 0).all()
  assert cond.count_params() == dense(LATENT, 1024) + dense(1024, 1024) + 2 * dense(1024, LATENT)
  top = celeba.CELEBA_CONV.features("h2")
  assert top(tf.zeros([B, 1024])).shape == (B, 1024)
  assert top.count_params() == dense(1024, 1024)


def test_celeba_branches_follow_shape_not_name():
  face = Modality("face", GAUSSIAN_FIXED, (32, 32, 3), "image")
  tags = Modality("tags", CATEGORICAL, (7,))
  enc = celeba.CELEBA_CONV.encoder([face, tags], 16, "q")
  mean, _ = enc({"face": tf.zeros([B, 32, 32, 3]), "tags": tf.zeros([B, 7])})
  assert mean.shape == (B, 16)
  assert len([s for s in kernel_shapes(enc) if len(s) == 4]) == 4  # conv branch on the image
  # A 32x32 image starts from a 2x2x256 grid: D1024R, four up-convolutions.
  dec = celeba.CELEBA_CONV.decoder(face, "p")
  dist = dec(tf.zeros([B, 16]))
  assert tuple(dist.event_shape) == (32, 32, 3) and dist.batch_shape == (B,)
  assert kernel_shapes(dec)[0] == (16, 2 * 2 * 256)
  label_dist = celeba.CELEBA_CONV.decoder(tags, "p_tags")(tf.zeros([B, 16]))
  np.testing.assert_allclose(label_dist.mean().numpy().sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kind, channels", [(BERNOULLI, 1), (GAUSSIAN, 2)])
def test_celeba_other_image_likelihoods(kind, channels):
  m = Modality("x", kind, (16, 16, channels), "image")
  dist = celeba.CELEBA_CONV.decoder(m, "p")(tf.zeros([B, 8]))
  assert dist.batch_shape == (B,) and tuple(dist.event_shape) == m.shape
  assert dist.log_prob(tf.zeros([B, 16, 16, channels])).shape == (B,)


def test_channel_groups_keep_each_pixel_parameters_together():
  # Pixel (i, j), channel c of group g holds 1000 g + 100 i + 10 j + c.
  g, i, j, c = np.meshgrid(np.arange(2), np.arange(3), np.arange(4), np.arange(5), indexing="ij")
  values = (1000 * g + 100 * i + 10 * j + c).astype(np.float32)  # [group, H, W, C]
  conv_out = np.concatenate([values[0], values[1]], axis=-1)[None]  # [1, H, W, 2C]
  flat = blocks.ChannelGroupsToFlat(2)(tf.constant(conv_out)).numpy()
  np.testing.assert_array_equal(flat[0], values.reshape(-1))


def test_celeba_shapes_it_cannot_produce_are_refused():
  with pytest.raises(ValueError, match="divisible by 16"):
    celeba.CELEBA_CONV.decoder(Modality("x", GAUSSIAN_FIXED, (60, 64, 3), "image"), "p")
  with pytest.raises(ValueError, match="no convolutional decoder head"):
    celeba.conv_distribution_head(Modality("x", CATEGORICAL, (3,)))


def test_heads_stay_float32_under_mixed_precision():
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    enc = celeba.CELEBA_CONV.encoder([FACE, ATTRIBUTES], LATENT, "q")
    mean, var = enc(face_batch())
    dec = celeba.CELEBA_CONV.decoder(FACE, "p")
    dist = dec(mean, training=True)
    log_prob = dist.log_prob(face_batch()["image"])
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert enc.trunk.compute_dtype == "bfloat16"  # the hidden layers do run in bfloat16
  assert mean.dtype == tf.float32 and var.dtype == tf.float32
  assert dist.mean().dtype == tf.float32 and log_prob.dtype == tf.float32
  assert log_prob.shape == (B,) and np.isfinite(log_prob.numpy()).all()
