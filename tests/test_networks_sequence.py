"""jmvae_tf/networks/sequence.py: the sequence family's networks (a caption, tokens [T, V]) in
every architecture: shapes, the decoder's log-likelihood against a hand computation with
padding, padding embedding to zeros (and ignored by the GRU), mixed precision, XLA, and a tiny
JMVAE-kl that learns captions of classes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import jmvae_tf
from jmvae_tf.core.likelihoods import CATEGORICAL
from jmvae_tf.core.modalities import SEQUENCE, Modality
from jmvae_tf.networks import architecture, sequence

NETWORKS = {"conv": sequence.CONV_NETWORKS, "gru": sequence.GRU_NETWORKS}
LATENT = 4


def captions(n, length, vocabulary, seed=0):
  """n one-hot captions of 1..length tokens each, all-zero rows after them (padding)."""
  rng = np.random.default_rng(seed)
  out = np.zeros((n, length, vocabulary), np.float32)
  lengths = rng.integers(1, length + 1, n)
  lengths[0] = length  # one without padding
  for i, k in enumerate(lengths):
    out[i, np.arange(k), rng.integers(0, vocabulary, k)] = 1.0
  return out, lengths


def log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def with_networks(built: architecture.Architecture, networks) -> architecture.Architecture:
  """`built` with `networks` as its own for the sequence family."""
  return dataclasses.replace(built, families={**built.families, SEQUENCE: networks})


def test_a_caption_is_a_sequence_whose_networks_every_architecture_has():
  caption = Modality("caption", "tokens", (8, 20))
  assert caption.family == SEQUENCE
  assert Modality("caption", "tokens", (8, 20), "vector").family == "vector"  # read flat, asked
  assert SEQUENCE in architecture.FAMILY_NETWORKS
  assert architecture.FAMILY_NETWORKS.get(SEQUENCE) is sequence.SEQUENCE_NETWORKS
  assert architecture.FAMILY_NETWORKS.plugin_module(SEQUENCE) is None  # run.json names none
  for name in ("mnist_mlp", "celeba_conv", "generic"):
    assert architecture.get_architecture(name).networks_for(caption) is sequence.CONV_NETWORKS
  # A plug-in replaces them only when it says so.
  with pytest.raises(ValueError, match="family networks 'sequence' is registered already"):
    jmvae_tf.register_family_networks(SEQUENCE, sequence.gru_branch, sequence.gru_decoder)


@pytest.mark.parametrize("kind", sorted(NETWORKS))
@pytest.mark.parametrize("shape", [(8, 20), (1, 2), (12, 40)])
def test_shapes_of_the_branch_and_the_decoder(kind, shape):
  caption = Modality("caption", "tokens", shape)
  x, _ = captions(3, *shape)
  features = NETWORKS[kind].branch(caption, "branch")(x)
  dist = NETWORKS[kind].decoder(caption, "decoder", 1.0)(tf.zeros([3, LATENT]))
  assert features.shape == (3, sequence.FEATURES)
  assert dist.batch_shape == (3,) and dist.event_shape == shape
  assert dist.mean().shape == (3, *shape) and dist.log_prob(x).shape == (3,)


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_log_prob_is_the_sum_of_log_softmax_over_the_tokens_only(kind):
  """The head's logits per position, read by the likelihood in place: log p(w|z) is the sum
  over non-padding positions of log softmax(logits) at the true token."""
  T, V, B = 6, 7, 5
  caption = Modality("caption", "tokens", (T, V))
  decoder = NETWORKS[kind].decoder(caption, "decoder", 1.0)
  z = tf.random.stateless_normal([B, LATENT], seed=[1, 2])
  x, lengths = captions(B, T, V, seed=3)
  assert (lengths < T).any()
  log_prob = decoder(z).log_prob(x).numpy()
  logits = decoder.head.get_layer("params")(decoder.body(z)).numpy()  # [B, T, V]
  assert logits.shape == (B, T, V)
  by_hand = [
    sum(log_softmax(logits[b, t])[x[b, t].argmax()] for t in range(lengths[b])) for b in range(B)
  ]
  np.testing.assert_allclose(log_prob, by_hand, rtol=1e-5)


def test_padding_pulls_on_no_logit():
  """The gradient of log p(w|z) wrt a padding position's logits is 0 (TFP's one-hot
  categorical gives softmax there, which drove every weight to infinity in training)."""
  caption = Modality("caption", "tokens", (6, 7))
  decoder = sequence.sequence_decoder(caption, "decoder")
  x, lengths = captions(5, 6, 7, seed=3)
  z = tf.random.stateless_normal([5, LATENT], seed=[1, 2])
  logits = decoder.head.get_layer("params")(decoder.body(z))
  with tf.GradientTape() as tape:
    tape.watch(logits)
    flat = decoder.head.get_layer("flat_params")(logits)
    log_prob = decoder.head.layers[-1](flat).log_prob(x)
  gradient = tape.gradient(log_prob, logits).numpy()
  padding = np.arange(6)[None, :] >= lengths[:, None]
  assert padding.any()
  np.testing.assert_array_equal(gradient[padding], 0.0)
  assert np.abs(gradient[~padding]).sum(-1).min() > 0


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_a_padding_row_embeds_to_zeros(kind):
  caption = Modality("caption", "tokens", (8, 20))
  branch = NETWORKS[kind].branch(caption, "branch")
  x, lengths = captions(4, 8, 20, seed=1)
  branch(x)
  embedded = branch.get_layer("embedding")(x).numpy()
  padding = np.arange(8)[None, :] >= lengths[:, None]
  assert padding.any() and not branch.get_layer("embedding").use_bias
  np.testing.assert_array_equal(embedded[padding], 0.0)
  assert np.abs(embedded[~padding]).sum(-1).min() > 0


def test_the_gru_reads_a_caption_as_if_its_padding_were_not_there():
  caption = Modality("caption", "tokens", (8, 20))
  branch = sequence.gru_branch(caption, "branch")
  x, lengths = captions(6, 8, 20, seed=2)
  padded = branch(x).numpy()
  for i, k in enumerate(lengths):
    alone = branch(x[i : i + 1, :k]).numpy()
    np.testing.assert_allclose(padded[i], alone[0], rtol=1e-5, atol=1e-6)


IMAGES = {
  "mnist_mlp": Modality("image", "bernoulli", (28, 28, 1), "image"),
  "celeba_conv": Modality("image", "gaussian_fixed", (64, 64, 3), "image"),
  "generic": Modality("image", "bernoulli", (28, 28, 1), "image"),
}


@pytest.mark.parametrize("kind", sorted(NETWORKS))
@pytest.mark.parametrize("name", sorted(IMAGES))
def test_the_networks_build_in_each_architecture_next_to_an_image(name, kind):
  built = with_networks(architecture.get_architecture(name), NETWORKS[kind])
  image, caption = IMAGES[name], Modality("caption", "tokens", (8, 20))
  x, _ = captions(2, 8, 20)
  batch = {"image": tf.zeros([2, *image.shape]), "caption": tf.constant(x)}
  encoder = built.encoder([image, caption], LATENT, "q")
  mean, variance = encoder(batch)
  assert mean.shape == (2, LATENT) and variance.shape == (2, LATENT)
  dist = built.decoder(caption, "p_caption")(mean)
  assert dist.event_shape == (8, 20) and np.isfinite(dist.log_prob(x).numpy()).all()
  assert built.decoder(image, "p_image")(mean).event_shape == image.shape


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_heads_stay_float32_under_mixed_precision(kind):
  caption = Modality("caption", "tokens", (8, 20))
  x, _ = captions(3, 8, 20)
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    features = NETWORKS[kind].branch(caption, "branch")(x)
    dist = NETWORKS[kind].decoder(caption, "decoder", 1.0)(tf.zeros([3, LATENT]))
    log_prob = dist.log_prob(x)
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert features.dtype == tf.bfloat16  # the hidden layers do run in bfloat16
  assert dist.distribution.logits_parameter().dtype == tf.float32
  assert log_prob.dtype == tf.float32 and np.isfinite(log_prob.numpy()).all()


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_the_networks_compile_with_xla(kind):
  """Forward and backward of branch + decoder under jit_compile, as eagerly."""
  caption = Modality("caption", "tokens", (8, 20))
  branch = NETWORKS[kind].branch(caption, "branch")
  decoder = NETWORKS[kind].decoder(caption, "decoder", 1.0)
  project = keras.layers.Dense(LATENT)
  x = tf.constant(captions(4, 8, 20)[0])

  def step(x):
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(decoder(project(branch(x))).log_prob(x))
    variables = branch.trainable_variables + decoder.trainable_variables
    return loss, tape.gradient(loss, variables)

  eager_loss, eager_grads = step(x)
  xla_loss, xla_grads = tf.function(step, jit_compile=True)(x)
  np.testing.assert_allclose(xla_loss.numpy(), eager_loss.numpy(), rtol=1e-4)
  assert len(xla_grads) == len(eager_grads) and all(g is not None for g in xla_grads)
  for a, b in zip(xla_grads, eager_grads):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5)


def test_a_plugin_kind_with_two_parameters_per_element_takes_them_group_by_group():
  """A Gaussian sequence (T, V): loc [B, T*V] then scale, as the image heads' groups."""
  values = Modality("values", "gaussian", (5, 3), SEQUENCE)
  dist = sequence.sequence_decoder(values, "decoder")(tf.zeros([2, LATENT]))
  assert dist.event_shape == (5, 3) and dist.mean().shape == (2, 5, 3)


def test_a_tiny_jmvae_kl_learns_captions_of_classes():
  """(caption, class) pairs, the caption "the" + the class's word (class c: c+1 times) +
  end-of-sentence, then padding: the loss falls, and from the class alone the caption's
  mean has the class's word after "the" and end-of-sentence where the class says."""
  THE, END, T = 3, 4, 6
  rng = np.random.default_rng(0)
  classes = rng.integers(0, 3, 96)
  text = np.zeros((96, T, 5), np.float32)
  for i, c in enumerate(classes):
    tokens = [THE] + [c] * (c + 1) + [END]
    text[i, np.arange(len(tokens)), tokens] = 1.0
  data = jmvae_tf.ArrayDataSet(
    [Modality("caption", "tokens", (T, 5)), Modality("label", CATEGORICAL, (3,))],
    {"caption": text, "label": np.eye(3, dtype=np.float32)[classes]},
    architecture="generic",
  )
  model = jmvae_tf.make_model("jmvae_kl", data, architecture_options={"hidden": "32"}, latent_dim=2)
  assert model.joint_encoder.branches[0].name == "caption_branch"
  assert model.joint_encoder.branches[0].get_layer("conv_0") is not None  # the sequence branch
  result = jmvae_tf.train(
    model, data, epochs=100, batch_size=32, warmup_epochs=0, learning_rate=3e-3, verbose=0
  )
  losses = result.history["loss"]
  assert losses[-1] < 0.5 * losses[0], losses[::10]
  labels = {"label": tf.constant(np.eye(3, dtype=np.float32))}
  words = model.generated_mean(labels, "caption", given=["label"]).numpy().argmax(-1)
  np.testing.assert_array_equal(words[:, 1], [0, 1, 2])
  np.testing.assert_array_equal([words[c, c + 2] for c in range(3)], [END] * 3)
