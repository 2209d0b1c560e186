"""jmvae_tf/core/likelihoods.py: for each kind, the decoder head's parameters and its distribution's
log-density against numpy (TFP's parameter conventions read from its layers: Bernoulli and
categorical logits; IndependentNormal's loc, then softplus of the scale half; N(tanh(mu), v) for
the fixed variance), what a served input may hold, what serving returns, how values are drawn as
pictures and the classes of a categorical modality."""

import numpy as np
import pytest
import tensorflow as tf

from jmvae_tf.core import likelihoods
from jmvae_tf.core.likelihoods import BERNOULLI, CATEGORICAL, GAUSSIAN, GAUSSIAN_FIXED
from jmvae_tf.core.modalities import Modality

SEED = tf.constant([3, 4], tf.int64)


def params(n, size, seed=0):
  return tf.random.stateless_normal([n, size], seed=[seed, 9]) * 2.0


def log_sigmoid(x):
  return -np.logaddexp(0.0, -x)


def softplus(x):
  return np.logaddexp(0.0, x)


def log_normal(x, loc, scale):
  return -0.5 * np.log(2 * np.pi) - np.log(scale) - 0.5 * ((x - loc) / scale) ** 2


# --- the decoder's last layers -----------------------------------------------------------------


@pytest.mark.parametrize(
  "likelihood, shape, size",
  [
    (BERNOULLI, (28, 28, 1), 784),
    (CATEGORICAL, (10,), 10),
    (GAUSSIAN, (40,), 80),  # a loc and a scale per element
    (GAUSSIAN, (4, 4, 2), 64),
    (GAUSSIAN_FIXED, (64, 64, 3), 12288),  # the mean alone
  ],
)
def test_params_size(likelihood, shape, size):
  assert likelihood.params_size(shape) == size


def test_bernoulli_log_prob_reads_the_parameters_as_logits():
  shape = (2, 3, 1)
  logits = params(4, 6)
  dist = BERNOULLI.distribution_layer(shape)(logits)
  assert dist.batch_shape == (4,) and dist.event_shape == shape
  x = tf.cast(tf.random.stateless_uniform([4, *shape], seed=[1, 2]) < 0.5, tf.float32)
  lo, xs = logits.numpy(), x.numpy().reshape(4, -1)
  by_hand = (xs * log_sigmoid(lo) + (1 - xs) * log_sigmoid(-lo)).sum(-1)
  np.testing.assert_allclose(dist.log_prob(x).numpy(), by_hand, rtol=1e-5)
  np.testing.assert_allclose(
    dist.mean().numpy().reshape(4, -1), 1 / (1 + np.exp(-lo)), rtol=1e-5
  )  # the tensor Keras sees is the mean, not a sample


def test_categorical_log_prob_is_the_log_softmax_of_the_true_class():
  logits = params(5, 7)
  dist = CATEGORICAL.distribution_layer((7,))(logits)
  classes = [0, 6, 3, 3, 1]
  lo = logits.numpy()
  log_softmax = lo - np.log(np.exp(lo).sum(-1, keepdims=True))
  np.testing.assert_allclose(
    dist.log_prob(tf.one_hot(classes, 7)).numpy(), log_softmax[range(5), classes], rtol=1e-5
  )


def test_gaussian_log_prob_reads_loc_then_the_softplus_of_the_scale():
  """tfpl.IndependentNormal splits the parameters in halves: loc, then scale = softplus(half)."""
  shape = (3, 2)
  raw = params(4, 12)
  dist = GAUSSIAN.distribution_layer(shape)(raw)
  assert dist.event_shape == shape
  loc, scale = raw.numpy()[:, :6], softplus(raw.numpy()[:, 6:])
  x = tf.random.stateless_normal([4, *shape], seed=[5, 6])
  by_hand = log_normal(x.numpy().reshape(4, -1), loc, scale).sum(-1)
  np.testing.assert_allclose(dist.log_prob(x).numpy(), by_hand, rtol=1e-5)
  np.testing.assert_allclose(dist.stddev().numpy().reshape(4, -1), scale, rtol=1e-5)


@pytest.mark.parametrize("variance", [1.0, 0.25])
def test_fixed_variance_gaussian_is_normal_of_tanh_mu_with_variance_v(variance):
  shape = (2, 2, 3)
  mu = params(3, 12)
  layer = (
    GAUSSIAN_FIXED.distribution_layer(shape)
    if variance == 1.0
    else GAUSSIAN_FIXED.distribution_layer(shape, variance=variance)
  )
  dist = layer(mu)
  assert dist.event_shape == shape and GAUSSIAN_FIXED.has_fixed_variance
  x = tf.random.stateless_uniform([3, *shape], seed=[7, 8], minval=-1.0, maxval=1.0)
  by_hand = log_normal(x.numpy().reshape(3, -1), np.tanh(mu.numpy()), np.sqrt(variance)).sum(-1)
  np.testing.assert_allclose(dist.log_prob(x).numpy(), by_hand, rtol=1e-5)


def test_fixed_variance_head_with_another_variance():
  """variance=v: N(tanh(params), v) per element, log-density by hand; v <= 0 refused."""
  m = Modality("attributes", GAUSSIAN_FIXED, (6,), "vector")
  params = tf.reshape(tf.linspace(-2.0, 2.0, 12), [2, 6])
  dist = m.likelihood.distribution_layer(m.shape, variance=0.25)(params)
  x = tf.ones([2, 6])
  mean = np.tanh(params.numpy())
  np.testing.assert_allclose(dist.stddev().numpy(), 0.5)
  by_hand = np.sum(-0.5 * np.log(2 * np.pi * 0.25) - (1.0 - mean) ** 2 / (2 * 0.25), axis=1)
  np.testing.assert_allclose(dist.log_prob(x).numpy(), by_hand, rtol=1e-5)
  with pytest.raises(ValueError, match="variance must be positive"):
    m.likelihood.distribution_layer(m.shape, variance=0.0)


def test_only_the_fixed_variance_gaussian_has_a_fixed_variance_and_categorical_checks_shape():
  assert [k.has_fixed_variance for k in (BERNOULLI, CATEGORICAL, GAUSSIAN)] == [False] * 3
  assert [k.conv_groups for k in (BERNOULLI, CATEGORICAL, GAUSSIAN, GAUSSIAN_FIXED)] == [
    1,
    None,
    2,
    1,
  ]
  with pytest.raises(ValueError, match=r"categorical modality 'tags' needs shape \(num_classes,\)"):
    CATEGORICAL.check_shape("tags", (2, 5))
  for kind in (BERNOULLI, GAUSSIAN, GAUSSIAN_FIXED):
    kind.check_shape("x", (2, 5))  # any shape


# --- serving -----------------------------------------------------------------------------------


def _domain_holds(likelihood, values):
  ok, message, shown = likelihood.domain("x", tf.constant(values, tf.float32))
  return bool(ok), message.format(*[float(v) for v in shown])


def test_domains_of_values_in_a_range():
  for kind in (BERNOULLI, GAUSSIAN_FIXED):
    low, high = kind.value_range
    assert _domain_holds(kind, [[low, high], [0.5, 0.0]])[0]
    ok, message = _domain_holds(kind, [[low, high + 0.5], [low - 1, 0.0]])
    assert not ok
    assert message == (
      f"x: values must be in [{low:g}, {high:g}]; got min {low - 1} and max {high + 0.5}"
    )
  assert BERNOULLI.describe_domain() == "in [0, 1]"
  assert GAUSSIAN_FIXED.describe_domain() == "in [-1, 1]"


def test_a_gaussian_domain_is_any_finite_value():
  assert GAUSSIAN.domain("x", tf.constant([[1e6, -1e6]])) is None
  assert GAUSSIAN.describe_domain() == "any finite value"


def test_a_categorical_domain_is_one_hot_rows():
  assert _domain_holds(CATEGORICAL, [[0, 1, 0], [1, 0, 0]]) == (
    True,
    "x: each example must be one-hot (a single 1, the rest 0)",
  )
  for bad in ([[0, 1, 1], [1, 0, 0]], [[0, 0, 0], [1, 0, 0]], [[0.5, 0.5, 0], [1, 0, 0]]):
    assert not _domain_holds(CATEGORICAL, bad)[0], bad
  assert CATEGORICAL.describe_domain() == "one-hot"


def _dist(likelihood, shape, n=4):
  return likelihood.distribution_layer(shape)(params(n, likelihood.params_size(shape), seed=1))


@pytest.mark.parametrize(
  "likelihood, shape, keys",
  [
    (BERNOULLI, (3, 3, 1), {"probs", "sample"}),
    (CATEGORICAL, (5,), {"probs", "sample"}),
    (GAUSSIAN, (6,), {"mean", "stddev", "sample"}),
    (GAUSSIAN_FIXED, (2, 2, 3), {"mean", "stddev", "sample"}),
  ],
)
def test_serving_outputs_are_float32_parameters_and_a_stateless_sample(likelihood, shape, keys):
  dist = _dist(likelihood, shape)
  out = likelihood.serving_outputs(dist, SEED)
  assert set(out) == keys
  for name, value in out.items():
    assert value.dtype == tf.float32 and value.shape == (4, *shape), name
  again = likelihood.serving_outputs(dist, SEED)["sample"]
  other = likelihood.serving_outputs(dist, tf.constant([3, 5], tf.int64))["sample"]
  np.testing.assert_array_equal(out["sample"], again)  # a function of the seed
  assert not np.array_equal(out["sample"], other)
  if "mean" in out:  # mean + stddev * a stateless standard normal draw of the seed
    np.testing.assert_allclose(out["mean"], dist.mean())
    noise = tf.random.stateless_normal([4, *shape], SEED)
    np.testing.assert_allclose(out["sample"], out["mean"] + out["stddev"] * noise, rtol=1e-5)


def test_bernoulli_and_categorical_samples_are_draws_of_their_probabilities():
  dist = _dist(BERNOULLI, (3, 3, 1))
  out = BERNOULLI.serving_outputs(dist, SEED)
  np.testing.assert_allclose(out["probs"], dist.mean())
  uniform = tf.random.stateless_uniform([4, 3, 3, 1], SEED)
  np.testing.assert_array_equal(out["sample"], (uniform.numpy() < out["probs"].numpy()) * 1.0)
  dist = _dist(CATEGORICAL, (5,), n=200)
  out = CATEGORICAL.serving_outputs(dist, SEED)
  np.testing.assert_allclose(out["probs"], dist.mean(), rtol=1e-5)
  np.testing.assert_allclose(out["probs"].numpy().sum(-1), 1.0, rtol=1e-5)
  sample = out["sample"].numpy()
  assert set(np.unique(sample)) == {0.0, 1.0} and (sample.sum(-1) == 1).all()
  # the likely class is drawn more often than the unlikely one, over 200 rows
  probs = out["probs"].numpy()
  drawn = probs[sample.astype(bool)]
  assert drawn.mean() > probs.mean()


# --- pictures and classes ----------------------------------------------------------------------


def test_picture_range_is_the_value_range_or_read_off_the_examples():
  assert BERNOULLI.picture_range(np.array([5.0])) == (0.0, 1.0)
  assert GAUSSIAN_FIXED.picture_range(np.array([0.5])) == (-1.0, 1.0)
  assert GAUSSIAN.picture_range(np.array([[0.0, -0.2]])) == (-1.0, 1.0)
  assert GAUSSIAN.picture_range(np.array([[0.0, 0.7]])) == (0.0, 1.0)


def test_to_unit_and_to_uint8_map_the_range_to_black_and_white_clipped():
  values = [-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]
  unit = likelihoods.to_unit(values, (-1.0, 1.0))
  assert unit.dtype == np.float32
  np.testing.assert_allclose(unit, [0.0, 0.0, 0.5, 0.75, 1.0, 1.0])
  pixels = likelihoods.to_uint8(values, (-1.0, 1.0))
  assert pixels.dtype == np.uint8
  np.testing.assert_array_equal(pixels, [0, 0, 128, 191, 255, 255])  # round(127.5) is 128
  np.testing.assert_array_equal(likelihoods.to_uint8([0.0, 0.2, 1.0], (0.0, 1.0)), [0, 51, 255])


def test_classes_only_for_categorical():
  np.testing.assert_array_equal(CATEGORICAL.classes((3,)), np.eye(3))
  assert CATEGORICAL.classes((3,)).dtype == np.float32
  for kind in (BERNOULLI, GAUSSIAN, GAUSSIAN_FIXED):
    assert kind.classes((3,)) is None


def test_get_by_name_or_instance_and_its_refusal():
  kinds = ("bernoulli", "categorical", "gaussian", "gaussian_fixed", "tokens")
  assert likelihoods.LIKELIHOODS.names()[:5] == kinds
  for kind in kinds:
    assert likelihoods.get(kind).kind == kind
    assert likelihoods.get(likelihoods.get(kind)) is likelihoods.get(kind)
    assert likelihoods.LIKELIHOODS.plugin_module(kind) is None  # the project's own
  assert repr(GAUSSIAN) == "Likelihood('gaussian')"
  with pytest.raises(ValueError) as refused:
    likelihoods.get("poisson_test")
  assert str(refused.value).startswith(
    "unknown likelihood kind 'poisson_test'; choose from ['bernoulli', 'categorical', "
  )
  assert "import the module that registers it, or pass --plugins=MODULE" in str(refused.value)


def test_a_registered_kind_is_one_like_the_projects_own():
  @likelihoods.register_likelihood
  class Exponential(likelihoods.Likelihood):
    kind = "exponential_test"
    value_range = (0.0, 1e30)

    def params_size(self, shape):
      return int(np.prod(shape))

    def distribution_layer(self, shape, variance=likelihoods.FIXED_VARIANCE):
      import tensorflow_probability as tfp

      return tfp.layers.DistributionLambda(
        lambda p: tfp.distributions.Independent(
          tfp.distributions.Exponential(tf.nn.softplus(p)), reinterpreted_batch_ndims=1
        )
      )

  made = likelihoods.get("exponential_test")
  assert isinstance(made, Exponential) and likelihoods.get(made) is made
  assert likelihoods.LIKELIHOODS.plugin_module("exponential_test") == __name__
  waits = Modality("waits", "exponential_test", (3,), "vector")
  assert waits.likelihood is made and Modality.from_dict(waits.to_dict()) == waits
  dist = made.distribution_layer((3,))(tf.zeros([2, 3]))
  np.testing.assert_allclose(
    dist.log_prob(tf.ones([2, 3])), [3 * (np.log(np.log(2)) - np.log(2))] * 2, rtol=1e-5
  )
  likelihoods.register_likelihood(Exponential)  # this module run again: no clash
  with pytest.raises(ValueError, match="likelihood kind 'exponential_test' is registered already"):
    likelihoods.LIKELIHOODS.register("exponential_test", made, "another_module")
  with pytest.raises(TypeError, match="register_likelihood takes a Likelihood, got str"):
    likelihoods.register_likelihood("exponential")
  with pytest.raises(ValueError, match="Nameless has no kind"):
    likelihoods.register_likelihood(type("Nameless", (likelihoods.Likelihood,), {}))


# --- tokens: a sequence of categoricals whose padding counts nowhere -------------------------


def captions(length=5, vocabulary=4):
  """Two sequences as one-hot rows: [2, 1, 3(end)] then padding, and [1, 3(end)] then padding."""
  out = np.zeros((2, length, vocabulary), np.float32)
  for i, tokens in enumerate(([2, 1, 3], [1, 3])):
    out[i, np.arange(len(tokens)), tokens] = 1.0
  return out


def test_tokens_log_prob_is_the_sum_over_real_positions_only():
  """Against a hand computation: sum over the tokens up to end-of-sentence of log softmax;
  logits at padded positions change nothing."""
  T, V = 5, 4
  tokens = likelihoods.TOKENS
  assert tokens.params_size((T, V)) == T * V
  p = np.asarray(params(2, T * V))
  value = captions(T, V)
  log_prob = tokens.distribution_layer((T, V))(tf.constant(p)).log_prob(value).numpy()
  logits = p.reshape(2, T, V)
  log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  np.testing.assert_allclose(log_prob, (value * log_softmax).sum((1, 2)), rtol=1e-5)
  moved = logits.copy()
  moved[0, 3:] += 7.0  # example 0's padding positions
  moved[1, 2:] -= 3.0
  again = tokens.distribution_layer((T, V))(tf.constant(moved.reshape(2, -1))).log_prob(value)
  np.testing.assert_allclose(again.numpy(), log_prob, rtol=1e-6)
  np.testing.assert_array_equal(tokens.count(tf.constant(value)).numpy(), [3, 2])


def test_tokens_shape_domain_and_serving_outputs():
  """(T, V) with V >= 2; a served value is one-hot or all-zero per position; serving returns
  probabilities and a one-hot sample per position."""
  tokens = likelihoods.TOKENS
  Modality("caption", "tokens", (5, 4))  # a vector-family modality by default
  with pytest.raises(ValueError, match="needs shape \\(max_tokens, vocabulary_size"):
    Modality("caption", "tokens", (5,))
  ok, _, _ = tokens.domain("caption", tf.constant(captions()))
  bad, message, _ = tokens.domain("caption", tf.constant(captions() * 2))
  assert bool(ok) and not bool(bad) and "all zeros (padding)" in message
  dist = tokens.distribution_layer((5, 4))(tf.constant(params(2, 20)))
  out = tokens.serving_outputs(dist, tf.constant([1, 2], tf.int64))
  assert out["probs"].shape == (2, 5, 4) and out["sample"].shape == (2, 5, 4)
  np.testing.assert_allclose(out["probs"].numpy().sum(-1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(out["sample"].numpy().sum(-1), 1.0)


def test_a_model_learns_tokens_with_a_class():
  """JMVAE-kl on (caption tokens, class) pairs where the caption says the class: the loss
  falls and label -> caption puts its mass on the class's word (the text issue's first step)."""
  import jmvae_tf  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  classes = rng.integers(0, 3, 96)
  text = np.zeros((96, 3, 6), np.float32)
  text[:, 0, 0] = 1.0  # "the"
  text[np.arange(96), 1, 1 + classes] = 1.0  # the class's word
  text[:, 2, 5] = 1.0  # end-of-sentence
  data = jmvae_tf.ArrayDataSet(
    [Modality("caption", "tokens", (3, 6)), Modality("label", CATEGORICAL, (3,))],
    {"caption": text, "label": np.eye(3, dtype=np.float32)[classes]},
    architecture="generic",
  )
  model = jmvae_tf.make_model("jmvae_kl", data, architecture_options={"hidden": "32"}, latent_dim=2)
  result = jmvae_tf.train(
    model, data, epochs=100, batch_size=32, warmup_epochs=0, learning_rate=3e-3, verbose=0
  )
  losses = result.history["loss"]
  assert losses[-1] < 0.5 * losses[0]
  labels = {"label": tf.constant(np.eye(3, dtype=np.float32))}
  words = model.generated_mean(labels, "caption", given=["label"]).numpy()
  np.testing.assert_array_equal(words[:, 1].argmax(-1), [1, 2, 3])
