"""Likelihood kinds: what each kind of modality means, in one place.

A modality's likelihood (`Modality.likelihood`) says how its decoder ends (the size and grouping
of the parameters and the TFP distribution layer over them), what values a served input may
hold (its domain), what serving returns for it, how its values are drawn as a picture and, for
a categorical one, what its classes are. Consumers ask the likelihood; no other module compares
kind strings.

  bernoulli       binary data, e.g. binarised MNIST pixels (probabilities of 1)
  categorical     one-hot data, e.g. class labels
  gaussian        real data with a learned diagonal variance
  gaussian_fixed  real data, tanh mean, variance fixed (1: the paper's CelebA)
  tokens          a sequence of at most T tokens of a vocabulary of V [T, V]: one-hot per
                  position, all-zero rows for padding (which count nowhere), a categorical
                  per position (the text issue's non-autoregressive decoder)

A plug-in adds a kind: a subclass of `Likelihood` (its `kind`, `params_size` and
`distribution_layer` at least), registered with `register_likelihood`; run.json records the
module that registered it.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

from jmvae_tf.core import plugins

tfd = tfp.distributions
tfpl = tfp.layers

# Parameters and likelihoods always compute in float32: under a mixed-precision policy only the
# hidden layers run in bfloat16/float16, so log-densities summed over 784 pixels or the
# Gaussian parameters never lose precision.
HEAD_DTYPE = "float32"
FIXED_VARIANCE = 1.0  # the paper's CelebA decoders

Domain = Tuple[tf.Tensor, str, Sequence[tf.Tensor]]  # (all values fit, message, its values)


class Likelihood:
  """One kind of modality: the project's four instances below, and those plug-ins register
  (`register_likelihood`)."""

  kind = ""
  # The network family of its modalities where it has one ("vector" for a class); None where
  # a modality must say (a Bernoulli or Gaussian one may be an image or a vector).
  default_family: Optional[str] = None
  # The range the values of the modality lie in, or None where they may be any real number.
  value_range: Optional[Tuple[float, float]] = None
  # Parameters per element of a convolutional head's output (None: no convolutional head).
  conv_groups: Optional[int] = None
  # Whether a vector of this kind may be read as attributes (each value on one side of the
  # middle of its range) by coherence; a token sequence may not.
  reads_as_attributes = True
  # Whether its modalities may carry a vocabulary (`Modality.vocabulary`): text.
  reads_text = False

  def __repr__(self):
    return f"Likelihood({self.kind!r})"

  # A kind names one likelihood: two instances of it (a plug-in imported again) are the same.
  def __eq__(self, other):
    return isinstance(other, Likelihood) and other.kind == self.kind

  def __hash__(self):
    return hash(self.kind)

  def check_shape(self, name: str, shape: Tuple[int, ...]) -> None:
    """A ValueError where this kind cannot model a modality of `shape`."""

  @property
  def has_fixed_variance(self) -> bool:
    return False

  # --- the decoder's last layers -----------------------------------------------------------
  def params_size(self, shape: Tuple[int, ...]) -> int:
    """Flat parameters of p(modality | z) for one example."""
    raise NotImplementedError

  def distribution_layer(self, shape, variance: float = FIXED_VARIANCE) -> keras.layers.Layer:
    """Flat parameters [B, params_size] -> a tfp Distribution (batch shape [B]).

    convert_to_tensor_fn is the mean: when a Keras graph needs a tensor it gets the expected
    value, not a stateful sample (sampling is done explicitly, with seeds)."""
    raise NotImplementedError

  # --- serving -----------------------------------------------------------------------------
  def domain(self, name: str, value: tf.Tensor) -> Optional[Domain]:
    """What a served input must satisfy beyond being finite, or None for nothing more."""
    if self.value_range is None:
      return None
    low, high = self.value_range
    return (
      tf.reduce_all((value >= low) & (value <= high)),
      f"{name}: values must be in [{low:g}, {high:g}]; got min {{}} and max {{}}",
      [tf.reduce_min(value), tf.reduce_max(value)],
    )

  def describe_domain(self) -> str:
    if self.value_range is None:
      return "any finite value"
    return "in [{:g}, {:g}]".format(*self.value_range)

  def serving_outputs(self, dist, seed: tf.Tensor) -> Dict[str, tf.Tensor]:
    """The parameters of p(modality|z) and one stateless sample, as float32 tensors (drawn
    with tf.random.stateless_*, int64 seeds, rather than TFP's `sample`, whose stateless seeds
    must be int32)."""
    mean, stddev = dist.mean(), dist.stddev()
    noise = tf.random.stateless_normal(tf.shape(mean), seed, dtype=mean.dtype)
    return {"mean": mean, "stddev": stddev, "sample": mean + stddev * noise}

  # --- pictures and classes ----------------------------------------------------------------
  def picture_range(self, examples) -> Tuple[float, float]:
    """The range mapped to black..white when values like `examples` are drawn."""
    if self.value_range is not None:
      return self.value_range
    return (-1.0, 1.0) if float(np.min(examples)) < 0 else (0.0, 1.0)

  def classes(self, shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    """One value per class ([C, ...]) for a modality that is a class, else None."""
    return None


class _Bernoulli(Likelihood):
  kind = "bernoulli"
  value_range = (0.0, 1.0)  # probabilities of 1: binary or grey pixels
  conv_groups = 1

  def params_size(self, shape):
    return tfpl.IndependentBernoulli.params_size(shape)

  def distribution_layer(self, shape, variance=FIXED_VARIANCE):
    return tfpl.IndependentBernoulli(
      shape, convert_to_tensor_fn=tfd.Distribution.mean, name="bernoulli", dtype=HEAD_DTYPE
    )

  def serving_outputs(self, dist, seed):
    probs = dist.mean()
    uniform = tf.random.stateless_uniform(tf.shape(probs), seed, dtype=probs.dtype)
    return {"probs": probs, "sample": tf.cast(uniform < probs, tf.float32)}


class _Categorical(Likelihood):
  kind = "categorical"
  value_range = (0.0, 1.0)
  default_family = "vector"

  def check_shape(self, name, shape):
    if len(shape) != 1:
      raise ValueError(f"categorical modality {name!r} needs shape (num_classes,), got {shape}")

  def params_size(self, shape):
    return tfpl.OneHotCategorical.params_size(shape[0])

  def distribution_layer(self, shape, variance=FIXED_VARIANCE):
    return tfpl.OneHotCategorical(
      shape[0], convert_to_tensor_fn=tfd.Distribution.mean, name="categorical", dtype=HEAD_DTYPE
    )

  def domain(self, name, value):
    rows = tf.reshape(value, [tf.shape(value)[0], -1])
    one_hot = tf.reduce_all((rows == 0.0) | (rows == 1.0)) & tf.reduce_all(
      tf.reduce_sum(rows, axis=-1) == 1.0
    )
    return one_hot, f"{name}: each example must be one-hot (a single 1, the rest 0)", []

  def describe_domain(self):
    return "one-hot"

  def serving_outputs(self, dist, seed):
    logits = dist.logits_parameter()
    classes = tf.random.stateless_categorical(logits, 1, seed)[:, 0]
    return {
      "probs": tf.nn.softmax(logits),
      "sample": tf.one_hot(classes, int(logits.shape[-1]), dtype=tf.float32),
    }

  def classes(self, shape):
    return np.eye(shape[0], dtype=np.float32)


class _Gaussian(Likelihood):
  kind = "gaussian"
  conv_groups = 2  # loc, then scale

  def params_size(self, shape):
    return tfpl.IndependentNormal.params_size(shape)

  def distribution_layer(self, shape, variance=FIXED_VARIANCE):
    return tfpl.IndependentNormal(
      shape, convert_to_tensor_fn=tfd.Distribution.mean, name="normal", dtype=HEAD_DTYPE
    )


class _FixedVarianceGaussian(Likelihood):
  """N(tanh(mu), variance) per element: the paper's CelebA likelihood with variance 1. A
  smaller variance weighs reconstruction against the KL terms as a beta-VAE's beta = variance
  would (-log p = squared error / (2 variance) + a constant)."""

  kind = "gaussian_fixed"
  value_range = (-1.0, 1.0)  # the tanh mean cannot leave it
  conv_groups = 1

  @property
  def has_fixed_variance(self):
    return True

  def params_size(self, shape):
    return math.prod(shape)

  def distribution_layer(self, shape, variance=FIXED_VARIANCE):
    if not variance > 0:
      raise ValueError(f"the decoder variance must be positive, got {variance}")
    shape = tuple(shape)
    scale = float(variance) ** 0.5

    def make(params):
      loc = tf.tanh(tf.reshape(params, tf.concat([tf.shape(params)[:-1], shape], 0)))
      return tfd.Independent(
        tfd.Normal(loc, tf.fill(tf.shape(loc), tf.constant(scale, loc.dtype))),
        reinterpreted_batch_ndims=len(shape),
      )

    return tfpl.DistributionLambda(
      make, convert_to_tensor_fn=tfd.Distribution.mean, name="normal_fixed", dtype=HEAD_DTYPE
    )


class _PositionCategorical(tfd.OneHotCategorical):
  """A categorical over the V tokens of one position whose log-density of a row x is
  sum_v x_v log softmax(logits)_v, so that an all-zero (padding) row has log-density 0 and
  gradient 0. TFP's OneHotCategorical computes it with softmax_cross_entropy_with_logits,
  whose gradient assumes the row sums to 1: softmax(logits) - x, i.e. softmax(logits) for a
  padding row, a pull on its logits that never vanishes (it drove a model's weights to
  infinity within a few hundred steps)."""

  def _log_prob(self, x):
    logits = self._logits_parameter_no_checks()
    return tf.reduce_sum(tf.cast(x, logits.dtype) * tf.nn.log_softmax(logits), axis=-1)


class _Tokens(Likelihood):
  """p(w|z) = prod over positions t of Cat(w_t | softmax(logits_t)), for a sequence of T
  tokens of a vocabulary of V, shape (T, V). A value is one-hot at each position up to and
  including end-of-sentence and all zeros after it (padding): a zero row adds exactly 0 to the
  log-likelihood (it is sum_v w_tv log softmax_tv), so padding counts nowhere, in the loss or in
  the log-likelihoods. Each position has its own categorical given z (non-autoregressive), so
  eq 11's estimators and iterative sampling apply unchanged. Read and generated by the
  sequence family's networks (`jmvae_tf.networks.sequence`: an embedding and 1-D
  convolutions) in every architecture; family="vector" reads it flattened by MLPs instead."""

  kind = "tokens"
  value_range = (0.0, 1.0)
  # modalities.SEQUENCE, written out: modalities imports this module.
  default_family = "sequence"
  reads_as_attributes = False  # what a caption says is read by its data set's parser
  reads_text = True

  def check_shape(self, name, shape):
    if len(shape) != 2 or shape[1] < 2:
      raise ValueError(
        f"tokens modality {name!r} needs shape (max_tokens, vocabulary_size >= 2), got {shape}"
      )

  def params_size(self, shape):
    return int(shape[0]) * int(shape[1])

  def distribution_layer(self, shape, variance=FIXED_VARIANCE):
    length, vocabulary = int(shape[0]), int(shape[1])

    def make(params):
      logits = tf.reshape(params, [-1, length, vocabulary])
      return tfd.Independent(_PositionCategorical(logits=logits, dtype=tf.float32), 1)

    return tfpl.DistributionLambda(
      make, convert_to_tensor_fn=tfd.Distribution.mean, name="tokens", dtype=HEAD_DTYPE
    )

  def domain(self, name, value):
    sums = tf.reduce_sum(value, axis=-1)
    valid = tf.reduce_all((value == 0.0) | (value == 1.0)) & tf.reduce_all(
      (sums == 0.0) | (sums == 1.0)
    )
    return valid, f"{name}: each position must be one-hot, or all zeros (padding)", []

  def describe_domain(self):
    return "one-hot per position; all zeros for padding"

  def serving_outputs(self, dist, seed):
    logits = dist.distribution.logits_parameter()
    length, vocabulary = int(logits.shape[-2]), int(logits.shape[-1])
    flat = tf.reshape(logits, [-1, vocabulary])
    drawn = tf.random.stateless_categorical(flat, 1, seed)[:, 0]
    sample = tf.reshape(tf.one_hot(drawn, vocabulary), [-1, length, vocabulary])
    return {"probs": tf.nn.softmax(logits), "sample": sample}

  @staticmethod
  def count(value) -> tf.Tensor:
    """Tokens (non-padding positions) of each example [B]: what a per-token figure divides
    by."""
    return tf.reduce_sum(value, axis=[-2, -1])


BERNOULLI = _Bernoulli()
CATEGORICAL = _Categorical()
GAUSSIAN = _Gaussian()
GAUSSIAN_FIXED = _FixedVarianceGaussian()
TOKENS = _Tokens()
LIKELIHOODS = plugins.Registry(
  "likelihood kind",
  {k.kind: k for k in (BERNOULLI, CATEGORICAL, GAUSSIAN, GAUSSIAN_FIXED, TOKENS)},
)


def register_likelihood(likelihood, replace: bool = False):
  """Adds a likelihood kind: `likelihood` a Likelihood instance, or a subclass (instantiated
  with no arguments; so it serves as a class decorator). Returns what it was given."""
  instance = likelihood() if isinstance(likelihood, type) else likelihood
  if not isinstance(instance, Likelihood):
    raise TypeError(f"register_likelihood takes a Likelihood, got {type(instance).__name__}")
  if not instance.kind:
    raise ValueError(f"{type(instance).__name__} has no kind: set its class attribute `kind`")
  LIKELIHOODS.register(instance.kind, instance, plugins.calling_module(), replace=replace)
  return likelihood


def get(kind) -> Likelihood:
  """The likelihood of `kind` (its name, or a Likelihood itself)."""
  if isinstance(kind, Likelihood):
    return kind
  return LIKELIHOODS.get(kind)


def to_unit(values, value_range: Tuple[float, float]) -> np.ndarray:
  """Values in `value_range` mapped to [0, 1] (clipped), float32: a picture for matplotlib."""
  low, high = value_range
  return np.clip((np.asarray(values, np.float32) - low) / (high - low), 0, 1)


def to_uint8(values, value_range: Tuple[float, float]) -> np.ndarray:
  """Values in `value_range` as uint8 pixels, low -> 0 and high -> 255."""
  return np.round(to_unit(values, value_range) * 255).astype(np.uint8)
