"""What each objective trains on examples that lack modalities (jmvae_tf/models: the
`incomplete_loss_terms` of JMVAE-kl, JMVAE, hierarchical JMVAE, CVAE/CMMA; `step_terms` in
jmvae_tf/models/steps.py): each term against a hand computation, no gradient from a missing
modality, a complete batch with masks bit-identical to one without, the VAE-GAN's refusal."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from model_batches import SEED, build, random_batch

import jmvae_tf as jt
from jmvae_tf.core import gaussian, missing
from jmvae_tf.core.data import ArrayDataSet
from jmvae_tf.core.likelihoods import GAUSSIAN_FIXED
from jmvae_tf.core.modalities import IMAGE, VECTOR, Modality
from jmvae_tf.core.options import TrainConfig
from jmvae_tf.core.sampling import split_seed
from jmvae_tf.models.steps import LOSS, WEIGHTS
from jmvae_tf.training import driver
from pipelines.mnist import mnist_modalities


def masked(batch, **held):
  """`batch` with masks: held[name] a list of bools (default all True), absent values zeros."""
  n = int(batch["image"].shape[0])
  present = {k: tf.constant(held.get(k, [True] * n)) for k in ("image", "label")}
  return missing.attach(batch, present)


# --- hand computations -------------------------------------------------------------------------
def kl_hand(m1, v1, m2=None, v2=None):
  """KL(N(m1, v1) || N(m2, v2)) per row, diagonal Gaussians, in NumPy."""
  m1, v1 = np.asarray(m1, np.float64), np.asarray(v1, np.float64)
  m2 = np.zeros_like(m1) if m2 is None else np.asarray(m2, np.float64)
  v2 = np.ones_like(v1) if v2 is None else np.asarray(v2, np.float64)
  return 0.5 * np.sum(np.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1.0, axis=-1)


def bernoulli_nll(x, p):
  x, p = np.asarray(x, np.float64).reshape(len(x), -1), np.asarray(p, np.float64)
  p = p.reshape(len(p), -1)
  return -np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=-1)


def categorical_nll(w, p):
  return -np.sum(np.asarray(w) * np.log(np.asarray(p, np.float64)), axis=-1)


def nll_hand(model, name, z, x):
  mean = model.decode(z, names=[name])[name].mean().numpy()
  return bernoulli_nll(x, mean) if name == "image" else categorical_nll(x, mean)


# --- JMVAE-kl ------------------------------------------------------------------------------
def test_jmvae_kl_terms_against_a_hand_computation():
  """Rows: complete (eq 10), image only, label only, nothing: each its own bound."""
  model = build("jmvae_kl", alpha=0.5)
  model.kl_weight.assign(0.75)
  batch = random_batch(4)
  data = masked(batch, label=[True, False, True, False], image=[True, True, False, False])
  terms = model.step_terms(data, SEED, training=False)
  x, w = batch["image"].numpy(), batch["label"].numpy()
  joint_seed, image_seed, label_seed = split_seed(SEED, 3)  # the joint, then each subset

  mj, vj = model.joint_posterior_layers(batch, training=False)[0]
  mx, vx = model.subset_encoders["image"](batch, training=False)
  mw, vw = model.subset_encoders["label"](batch, training=False)
  z = gaussian.sample(mj, vj, joint_seed)
  complete = (
    nll_hand(model, "image", z, x)
    + nll_hand(model, "label", z, w)
    + 0.75 * kl_hand(mj, vj)
    + 0.5 * (kl_hand(mj, vj, mx, vx) + kl_hand(mj, vj, mw, vw))
  )
  zx = gaussian.sample(mx, vx, image_seed)
  image_only = nll_hand(model, "image", zx, x) + 0.75 * kl_hand(mx, vx)
  zw = gaussian.sample(mw, vw, label_seed)
  label_only = nll_hand(model, "label", zw, w) + 0.75 * kl_hand(mw, vw)

  expected = [complete[0], image_only[1], label_only[2], 0.0]
  np.testing.assert_allclose(terms[LOSS].numpy(), expected, rtol=2e-5, atol=1e-4)
  # The reported terms, and the examples each is averaged over.
  np.testing.assert_allclose(
    terms["nll_label"].numpy()[[0, 2]],
    [nll_hand(model, "label", z, w)[0], nll_hand(model, "label", zw, w)[2]],
    rtol=2e-5,
  )
  np.testing.assert_array_equal(terms[WEIGHTS]["nll_label"].numpy(), [1, 0, 1, 0])
  np.testing.assert_array_equal(terms[WEIGHTS]["nll_image"].numpy(), [1, 1, 0, 0])
  np.testing.assert_array_equal(terms[WEIGHTS]["kl_prior"].numpy(), [1, 1, 1, 0])
  np.testing.assert_array_equal(terms[WEIGHTS]["kl_joint_label"].numpy(), [1, 0, 0, 0])
  np.testing.assert_array_equal(terms[WEIGHTS][LOSS].numpy(), [1, 1, 1, 0])


def test_jmvae_kl_of_three_modalities_keeps_the_alpha_terms_within_what_an_example_holds():
  """An example holding a and b of a, b, c: the JMVAE-kl objective of (a, b) with q(z|a,b) as
  its joint encoder, alpha pulling q(z|a) and q(z|b) to it."""
  mods = [Modality(n, GAUSSIAN_FIXED, (3,), VECTOR) for n in ("a", "b", "c")]
  model = jt.make_model("jmvae_kl", mods, architecture="generic", latent_dim=4, alpha=0.3)
  rng = np.random.default_rng(0)
  batch = {n: tf.constant(rng.normal(size=(2, 3)), tf.float32) for n in "abc"}
  present = {"a": tf.constant([True, True]), "b": tf.constant([True, True])}
  present["c"] = tf.constant([True, False])
  terms = model.step_terms(missing.attach(batch, present), SEED, training=False)

  subsets = model.proper_subsets()
  seeds = split_seed(SEED, 1 + len(subsets))
  ab_seed = seeds[1 + subsets.index(("a", "b"))]
  post = {k: enc(batch, training=False) for k, enc in model.subset_encoders.items()}
  m, v = post["a+b"]
  z = gaussian.sample(m, v, ab_seed)
  dists = model.decode(z, names=["a", "b"])
  nll = sum(
    0.5 * np.sum((batch[n].numpy() - dists[n].mean().numpy()) ** 2, -1) + 1.5 * np.log(2 * np.pi)
    for n in "ab"
  )
  inner = kl_hand(m, v, *post["a"]) + kl_hand(m, v, *post["b"])
  expected = nll + kl_hand(m, v) + 0.3 * inner
  np.testing.assert_allclose(terms[LOSS].numpy()[1], expected[1], rtol=2e-5)
  np.testing.assert_array_equal(terms[WEIGHTS]["kl_joint_a"].numpy(), [1, 1])  # q(z|a): both
  np.testing.assert_array_equal(terms[WEIGHTS]["kl_joint_a+b"].numpy(), [1, 0])


# --- no gradient from what an example lacks --------------------------------------------------
def gradients(model, data, row=None):
  """{variable ref: its gradient (an array; zeros where none flows)} of the batch's summed loss,
  or of example `row`'s alone."""
  with tf.GradientTape() as tape:
    loss = model.step_terms(data, SEED, training=True)[LOSS]
    loss = tf.reduce_sum(loss) if row is None else loss[row]
  variables = model.trainable_variables
  grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
  return {v.ref(): tf.convert_to_tensor(g).numpy() for v, g in zip(variables, grads)}


@pytest.mark.parametrize("name", ["jmvae_kl", "jmvae", "hierarchical_jmvae"])
def test_no_gradient_into_a_missing_modalitys_decoder_nor_from_its_stand_in(name):
  model = build(name)
  batch = random_batch(4)
  data = masked(batch, label=[True, False, True, False])
  grads = gradients(model, data, row=1)  # the example without a label
  label_decoder = {v.ref() for v in model.decoders["label"].trainable_variables}
  assert label_decoder and not any(np.any(grads[v]) for v in label_decoder)
  assert any(np.any(g) for v, g in grads.items() if v not in label_decoder)  # it trains others
  if name == "jmvae_kl":  # nor into an encoder that reads the label
    readers = model.joint_encoder.trainable_variables
    readers += model.subset_encoders["label"].trainable_variables
    assert not any(np.any(grads[v.ref()]) for v in readers)
  # What stands in for the missing label changes nothing (not even through the imputation).
  other = dict(data)
  other["label"] = tf.tensor_scatter_nd_update(data["label"], [[1], [3]], tf.one_hot([4, 7], 10))
  a, b = gradients(model, data), gradients(model, other)
  for v in a:
    np.testing.assert_array_equal(a[v], b[v])


def test_jmvae_fills_the_missing_label_by_its_own_iterative_sampling():
  """JMVAE's bound of an image alone: -log p(x|z) + KL, z ~ q(z|x, w^), w^ one round of eq 6:
  the loss equals that of the complete batch with w^ in place of the label, image term only."""
  model = build("jmvae")
  batch = random_batch(3)
  held = tf.constant([True, False, True])
  terms = model.step_terms(masked(batch, label=[True, False, True]), SEED, training=False)
  impute_seed, seed = split_seed(SEED, 2)
  present = {"image": tf.constant([True] * 3), "label": held}
  zeroed = {**batch, "label": missing.where_held(held, batch["label"])}
  filled = jt.models.iterative.impute_absent(model, zeroed, present, 1, impute_seed)
  assert np.all(filled["label"].numpy()[1].sum() == 1.0)  # a drawn one-hot
  np.testing.assert_array_equal(filled["label"].numpy()[[0, 2]], batch["label"].numpy()[[0, 2]])
  forward = model.forward(filled, seed, training=False)
  expected = forward.nll["image"] + forward.kl["kl_prior"]
  np.testing.assert_allclose(terms[LOSS].numpy()[1], expected.numpy()[1], rtol=1e-6)
  np.testing.assert_allclose(terms["nll_label"].numpy()[1], 0.0)


# --- a complete batch: the code of before ----------------------------------------------------
@pytest.mark.parametrize("name", ["jmvae_kl", "jmvae", "hierarchical_jmvae", "cvae", "cmma"])
def test_a_complete_batch_with_masks_is_bit_identical_to_one_without(name):
  model = build(name)
  batch = random_batch(5)
  before = model.loss_terms(batch, SEED, training=True)
  after = model.step_terms(masked(batch), SEED, training=True)
  for term in model.trackers:
    np.testing.assert_array_equal(after[term].numpy(), before[term].numpy())
  plain = gradients(model, batch)
  with_masks = gradients(model, masked(batch))
  for v in plain:
    np.testing.assert_array_equal(plain[v], with_masks[v])
  # The training step's own path: each tf.cond branch takes its gradients.
  _, before = model.step_terms(batch, SEED, training=True, with_gradients=True)
  _, after = model.step_terms(masked(batch), SEED, training=True, with_gradients=True)
  for a, b in zip(before, after):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


# --- CVAE and CMMA skip; the VAE-GAN refuses -----------------------------------------------
@pytest.mark.parametrize("name", ["cvae", "cmma"])
def test_conditional_models_skip_examples_without_target_or_condition(name):
  model = build(name)  # image | label
  batch = random_batch(4)
  terms = model.step_terms(
    masked(batch, label=[True, False, True, True], image=[True, True, False, True]),
    SEED,
    training=False,
  )
  full = model.loss_terms(batch, SEED, training=False)
  np.testing.assert_array_equal(terms[WEIGHTS][LOSS].numpy(), [1, 0, 0, 1])
  np.testing.assert_array_equal(terms[LOSS].numpy()[[1, 2]], [0.0, 0.0])
  np.testing.assert_allclose(terms[LOSS].numpy()[[0, 3]], full[LOSS].numpy()[[0, 3]], rtol=1e-6)
  present = {"image": np.array([1, 1, 0, 1], bool), "label": np.array([1, 0, 1, 1], bool)}
  np.testing.assert_array_equal(model.learns_from(present), [True, False, False, True])


def small_arrays(n=200, missing_option="label:0.5"):
  rng = np.random.default_rng(0)
  train = {
    "image": (rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32),
    "label": np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)],
  }
  return ArrayDataSet(mnist_modalities(), train, missing=missing_option)


def test_the_driver_says_what_a_conditional_model_skips(capsys):
  data = small_arrays()
  model = build("cvae")
  driver.check_incomplete(model, data, TrainConfig(), verbose=1)
  out = capsys.readouterr().out
  assert "100 lack 'label'" in out and "learns from 100 of them and skips 100" in out


def test_the_vae_gan_refuses_incomplete_data_naming_jmvae_kl():
  mods = [
    Modality("image", GAUSSIAN_FIXED, (64, 64, 3), IMAGE),
    Modality("attributes", GAUSSIAN_FIXED, (40,), VECTOR),
  ]
  rng = np.random.default_rng(0)
  train = {
    "image": rng.uniform(-1, 1, (20, 64, 64, 3)),
    "attributes": rng.choice([-1.0, 1.0], (20, 40)),
  }
  data = ArrayDataSet(mods, train, architecture="celeba_conv", missing="attributes:0.5")
  gan = jt.make_model("jmvae_kl_gan", data, latent_dim=4)
  with pytest.raises(ValueError, match="train jmvae_kl"):
    driver.check_incomplete(gan, data, TrainConfig(), verbose=0)
  driver.check_incomplete(build("jmvae_kl"), small_arrays(), TrainConfig(), verbose=0)  # learns


def test_pattern_weighting_weighs_each_pattern_of_a_batch_the_same():
  """incomplete_weighting=pattern: a complete example among three image-only ones weighs
  4 / (2 * 1) = 2, each image-only one 4 / (2 * 3); one holding nothing 0."""
  batch = random_batch(5)
  data = masked(batch, label=[True, False, False, False, False], image=[True] * 4 + [False])
  for name in ("jmvae_kl", "jmvae"):
    model = build(name)
    plain = model.step_terms(data, SEED, training=False)[LOSS].numpy()
    model.options = dataclasses.replace(model.options, incomplete_weighting="pattern")
    weighted = model.step_terms(data, SEED, training=False)[LOSS].numpy()
    np.testing.assert_allclose(weighted, plain * [2.0, 2 / 3, 2 / 3, 2 / 3, 0.0], rtol=1e-6)
    complete = model.step_terms(masked(batch), SEED)[LOSS].numpy()
    np.testing.assert_array_equal(complete, model.loss_terms(batch, SEED)[LOSS].numpy())


@pytest.mark.parametrize("name", ["jmvae_kl", "jmvae"])
def test_xla_trains_on_masked_batches_of_unknown_size(name):
  """An ArrayDataSet's batches have no static size; under XLA the tf.cond between the complete
  and the incomplete step must not carry gradients through it (each branch takes its own)."""
  data = small_arrays(missing_option="label:0.7")
  model = build(name, latent_dim=8)
  result = jt.train(
    model, data, epochs=3, batch_size=50, warmup_epochs=0, jit_compile=True, verbose=0
  )
  assert np.all(np.isfinite(result.history["loss"]))
  assert result.history["loss"][-1] < result.history["loss"][0]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_training_on_complete_batches_with_masks_ends_where_it_does_without(jit_compile):
  """Through Keras' compiled loop too: 2 epochs with masks that are all True (missing=label:0)
  end with the very weights of 2 epochs without masks."""
  weights = []
  for option in (None, "label:0"):
    data = small_arrays(n=400, missing_option=option)
    model = jt.make_model("jmvae_kl", data, latent_dim=8)  # the same initial weights each time
    jt.train(
      model, data, epochs=2, batch_size=100, warmup_epochs=0, jit_compile=jit_compile, verbose=0
    )
    weights.append([v.numpy() for v in model.trainable_variables])
  for a, b in zip(*weights):
    np.testing.assert_array_equal(a, b)
