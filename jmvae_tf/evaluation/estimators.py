"""Test log-likelihood estimators of the paper (section 4.4, appendix A) for any trained model.

What each estimates (x = image, w = label, x~ = the test x itself):

- `conditional_log_likelihood(model, batch, target, given)`:
  * multi-conditional (target in given), eq 11: (1/N) sum_n log p(x~|z_n), z_n ~ q(z|x,w).
    A lower bound on log p(x~|x,w) = log E_{q(z|x,w)} p(x~|z) (Jensen).
    CVAE: log p(x~|z_n, w); hierarchical JMVAE (A.2): z_2 ~ q(z_2|x,w), z_1 ~ p(z_1|z_2), a looser bound.
  * single-conditional (target not in given), same form with z from a distribution that sees only
    the given modality: JMVAE-kl its unimodal encoder q(z|w); JMVAE and hierarchical JMVAE the joint
    encoder on the batch whose missing modality was imputed by K rounds of iterative sampling
    (eq 6, `iterative.iterative_impute`); CVAE the prior N(0,I) (input missing); CMMA its
    conditional prior p(z|w). Each is a lower bound on log E_{r(z|w)} p(x~|z) for that r, the
    paper's estimate of log p(x~|w).
- `iwae_log_likelihood(model, batch, observed)`: importance-weighted bound (Burda et al.) on the joint
  log p(x,w) (observed = all modalities, proposal q(z|x,w)) or a marginal such as log p(w)
  (proposal q(z|w) for JMVAE-kl; for JMVAE and hierarchical JMVAE, which have no q(z|w), the
  defensive mixture (p(z) + q(z|x_K,w))/2 with x_K imputed by iterative sampling, half the draws from
  each). A lower bound for every k, tightening as k grows.
- `iwae_conditional_log_likelihood(model, batch, target, given)`: log p(x|w) as the authors' code
  did it, IWAE log p(x,w) - IWAE log p(w): a consistent estimate (exact as k -> infinity) but, being
  a difference of two lower bounds, neither a lower nor an upper bound. For CVAE/CMMA it is the
  direct IWAE bound log mean_k p(x|z_k,w) p(z_k[|w]) / q(z_k|x,w), a true lower bound on log p(x|w).

Each model type has one small `_Estimators` subclass that says how to get its z and how to score
the target; the registry picks it by the model's class (nearest in the MRO). Everything runs as
tf.function graphs on whole batches with stateless seeds (shape [2]).
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import tensorflow as tf

from jmvae_tf import gaussian
from jmvae_tf.evaluation import iterative
from jmvae_tf.models import CMMA, CVAE, HierarchicalJMVAE, JMVAE, JMVAEKL, ConditionalModel
from jmvae_tf.models.base import split_seed

Batch = Dict[str, tf.Tensor]


# --- small tensor helpers ------------------------------------------------------------------

def log_mean_exp(x: tf.Tensor, axis: int = 0) -> tf.Tensor:
  """log (1/k) sum_k exp(x_k) along `axis`, stably."""
  k = tf.cast(tf.shape(x)[axis], x.dtype)
  return tf.reduce_logsumexp(x, axis=axis) - tf.math.log(k)


def tile_samples(t: tf.Tensor, n: int) -> tf.Tensor:
  """[B, ...] -> [n*B, ...], sample-major (row s*B + b is example b)."""
  shape = tf.shape(t)
  tiled = tf.broadcast_to(t[tf.newaxis], tf.concat([[n], shape], 0))
  return tf.reshape(tiled, tf.concat([[n * shape[0]], shape[1:]], 0))


def sample_n(mean: tf.Tensor, variance: tf.Tensor, n: int, seed: tf.Tensor) -> tf.Tensor:
  """n reparameterised draws of N(mean, variance) per row: [n*B, D], sample-major."""
  return gaussian.sample(tile_samples(mean, n), tile_samples(variance, n), seed)


def per_sample(values: tf.Tensor, n: int) -> tf.Tensor:
  """[n*B] -> [n, B]."""
  return tf.reshape(values, [n, -1])


# --- per-model-type estimators ----------------------------------------------------------

class _Estimators:
  """How one model type computes each estimate (subclasses override what differs)."""

  imputes_missing = False  # whether a missing modality is filled by iterative sampling

  def check(self, model, target: str, given: Tuple[str, ...]):
    if target not in model.modality_names:
      raise ValueError(f"{type(model).__name__} has no modality {target!r}; has {model.modality_names}")
    unknown = [g for g in given if g not in model.modality_names]
    if unknown or not given:
      raise ValueError(f"given must name modalities of {model.modality_names}, got {given}")

  def conditional(self, model, batch, target, given, n, seed, iterations) -> tf.Tensor:
    raise NotImplementedError

  def log_weights(self, model, batch, observed, k, seed, iterations) -> tf.Tensor:
    raise NotImplementedError(f"{type(model).__name__} has no IWAE estimate of log p({', '.join(observed)})")

  def iwae_conditional(self, model, batch, target, given, k, seed, iterations) -> tf.Tensor:
    seed_joint, seed_given = split_seed(seed, 2)
    observed = tuple(sorted(set(given) | {target}))
    joint = log_mean_exp(self.log_weights(model, batch, observed, k, seed_joint, iterations))
    marginal = log_mean_exp(self.log_weights(model, batch, tuple(sorted(given)), k, seed_given, iterations))
    return joint - marginal


class _JMVAEEstimators(_Estimators):
  """JMVAE: one latent layer, joint encoder, N(0,I) prior; missing modalities by iterative sampling."""

  imputes_missing = True

  # Latent layers: z_1 is what the decoders read.
  def posterior_layers(self, model, batch):
    return [model.encode(batch, training=False)]

  def prior_log_density(self, model, zs):
    return gaussian.log_density(zs[0])

  def bound_latents(self, model, posteriors, n, seed):
    """z_1 draws for the eq 11 bound, from the posterior layers."""
    mean, variance = posteriors[0]
    return sample_n(mean, variance, n, seed)

  def decoder_log_prob(self, model, z1, batch, target, n):
    return model.decoders[target](z1, training=False).log_prob(tile_samples(batch[target], n))

  def missing(self, model, given):
    missing = [m for m in model.modality_names if m not in given]
    if len(missing) != 1:
      raise ValueError(f"iterative sampling fills one missing modality; {missing} are missing")
    return missing[0]

  def given_only_posteriors(self, model, batch, given, seed, iterations):
    """Posterior layers computed from the given modalities only: the missing one imputed (eq 6)."""
    imputed = iterative.iterative_impute(model, batch, self.missing(model, given), iterations, seed)
    return self.posterior_layers(model, imputed)

  def conditional(self, model, batch, target, given, n, seed, iterations):
    seed_impute, seed_z = split_seed(seed, 2)
    if set(given) == set(model.modality_names):
      posteriors = self.posterior_layers(model, batch)
    else:
      posteriors = self.given_only_posteriors(model, batch, given, seed_impute, iterations)
    z1 = self.bound_latents(model, posteriors, n, seed_z)
    return tf.reduce_mean(per_sample(self.decoder_log_prob(model, z1, batch, target, n), n), axis=0)

  def prior_layers(self, model, rows, seed):
    """Draws of every latent layer from the generative prior: [rows, D] each."""
    return [tf.random.stateless_normal([rows, model.latent_dim], seed=seed)]

  def log_weights(self, model, batch, observed, k, seed, iterations):
    seed_impute, seed_z, seed_prior = split_seed(seed, 3)
    marginal = set(observed) != set(model.modality_names)
    if marginal:
      posteriors = self.given_only_posteriors(model, batch, observed, seed_impute, iterations)
    else:
      posteriors = self.posterior_layers(model, batch)
    # For a marginal such as log p(w) the imputed q(z|x_K,w) sees one imputed x and covers little of
    # p(z|w); where the model imputes, half the draws come from the prior (defensive mixture
    # r = (p(z) + q)/2, Hesterberg 1995), which keeps the bound valid and the weights bounded.
    num_prior = k // 2 if (marginal and self.imputes_missing) else 0
    layer_seeds = split_seed(seed_z, len(posteriors))
    zs = [sample_n(m, v, k - num_prior, s) for (m, v), s in zip(posteriors, layer_seeds)]
    if num_prior:
      rows = num_prior * tf.shape(posteriors[0][0])[0]
      zs = [tf.concat([zq, zp], 0) for zq, zp in zip(zs, self.prior_layers(model, rows, seed_prior))]
    log_q = tf.add_n([gaussian.log_density(z, tile_samples(m, k), tile_samples(v, k))
                      for z, (m, v) in zip(zs, posteriors)])
    log_prior = self.prior_log_density(model, zs)
    log_proposal = log_q
    if num_prior:
      log_proposal = tf.reduce_logsumexp(tf.stack([log_q, log_prior]), 0) - tf.math.log(2.0)
    log_lik = tf.add_n([self.decoder_log_prob(model, zs[0], batch, name, k) for name in observed])
    return per_sample(log_lik + log_prior - log_proposal, k)


class _JMVAEKLEstimators(_JMVAEEstimators):
  """JMVAE-kl: the given modalities' own encoder q(z|w); no iterative sampling."""

  imputes_missing = False

  def given_only_posteriors(self, model, batch, given, seed, iterations):
    return [model.encode_subset(batch, given, training=False)]


class _HierarchicalEstimators(_JMVAEEstimators):
  """Hierarchical JMVAE: L layers; the eq 11 bound follows A.2 (z_L ~ q, then down the priors)."""

  def posterior_layers(self, model, batch):
    return model.encode_all(batch, training=False)

  def prior_log_density(self, model, zs):
    total = gaussian.log_density(zs[-1])
    for l, prior in enumerate(model.priors):  # p(z_{l+1} | z_{l+2}) in 0-based layers
      mean, variance = prior(zs[l + 1], training=False)
      total += gaussian.log_density(zs[l], mean, variance)
    return total

  def prior_layers(self, model, rows, seed):
    seeds = split_seed(seed, model.num_layers)
    zs = [tf.random.stateless_normal([rows, model.latent_dim], seed=seeds[-1])]
    for prior, s in zip(reversed(model.priors), reversed(seeds[:-1])):
      mean, variance = prior(zs[0], training=False)
      zs.insert(0, gaussian.sample(mean, variance, s))
    return zs

  def bound_latents(self, model, posteriors, n, seed):
    seeds = split_seed(seed, model.num_layers)
    mean, variance = posteriors[-1]
    z = sample_n(mean, variance, n, seeds[-1])
    for prior, s in zip(reversed(model.priors), reversed(seeds[:-1])):
      mean, variance = prior(z, training=False)
      z = gaussian.sample(mean, variance, s)
    return z


class _ConditionalEstimators(_Estimators):
  """CVAE / CMMA: one direction, target | condition; z from q(z|t,c) or from the (conditional) prior."""

  def check(self, model, target, given):
    super().check(model, target, given)
    if target != model.target or model.condition not in given:
      raise ValueError(f"{type(model).__name__} models {model.target} | {model.condition} only, "
                       f"not {target} | {','.join(given)}")

  def target_log_prob(self, model, z, batch, n):
    return model.decode(z, tile_samples(batch[model.condition], n), training=False).log_prob(
        tile_samples(batch[model.target], n))

  def conditional(self, model, batch, target, given, n, seed, iterations):
    if target in given:
      mean, variance = model.encode(batch, training=False)
    else:
      mean, variance = model.prior(batch, training=False)
    z = sample_n(mean, variance, n, seed)
    return tf.reduce_mean(per_sample(self.target_log_prob(model, z, batch, n), n), axis=0)

  def conditional_log_weights(self, model, batch, k, seed):
    """log p(t|z,c) + log p(z[|c]) - log q(z|t,c), z ~ q(z|t,c): [k, B]."""
    mean, variance = model.encode(batch, training=False)
    prior_mean, prior_var = model.prior(batch, training=False)
    z = sample_n(mean, variance, k, seed)
    log_w = (self.target_log_prob(model, z, batch, k)
             + gaussian.log_density(z, tile_samples(prior_mean, k), tile_samples(prior_var, k))
             - gaussian.log_density(z, tile_samples(mean, k), tile_samples(variance, k)))
    return per_sample(log_w, k)

  def iwae_conditional(self, model, batch, target, given, k, seed, iterations):
    if target in given:
      raise ValueError("the IWAE estimate is of the single conditional log p(target|condition)")
    return log_mean_exp(self.conditional_log_weights(model, batch, k, seed))


_REGISTRY = {
    JMVAE: _JMVAEEstimators(),
    JMVAEKL: _JMVAEKLEstimators(),
    HierarchicalJMVAE: _HierarchicalEstimators(),
    CVAE: _ConditionalEstimators(),
    CMMA: _ConditionalEstimators(),
    ConditionalModel: _ConditionalEstimators(),
}


def estimators_for(model) -> _Estimators:
  """The estimators of the model's class (or of its nearest registered base class)."""
  for cls in type(model).__mro__:
    if cls in _REGISTRY:
      return _REGISTRY[cls]
  raise TypeError(f"no estimators for model type {type(model).__name__}")


# --- compiled entry points ---------------------------------------------------------------

def _iterations(iterations) -> tf.Tensor:
  return tf.cast(iterations, tf.int64)


@tf.function(reduce_retracing=True)
def _conditional(model, batch, target, given, n, seed, iterations):
  return estimators_for(model).conditional(model, batch, target, given, n, seed, iterations)


@tf.function(reduce_retracing=True)
def _log_weights(model, batch, observed, k, seed, iterations):
  return estimators_for(model).log_weights(model, batch, observed, k, seed, iterations)


@tf.function(reduce_retracing=True)
def _iwae_conditional(model, batch, target, given, k, seed, iterations):
  return estimators_for(model).iwae_conditional(model, batch, target, given, k, seed, iterations)


def _given(given) -> Tuple[str, ...]:
  return (given,) if isinstance(given, str) else tuple(sorted(given))


def conditional_log_likelihood(model, batch: Batch, target: str, given: Sequence[str], num_samples: int = 10,
                               iterations: int = 100, seed=(0, 0)) -> tf.Tensor:
  """Per-example eq 11 estimate of log p(target | given) ([B]); see the module docstring.

  target in given: the multi-conditional log p(x~|x,w); otherwise the single-conditional
  log p(x~|w) (iterations = K rounds of iterative sampling where the model needs it).
  """
  given = _given(given)
  estimators_for(model).check(model, target, given)
  if num_samples < 1:
    raise ValueError(f"num_samples must be at least 1, got {num_samples}")
  return _conditional(model, batch, target, given, int(num_samples), tf.cast(seed, tf.int64),
                      _iterations(iterations))


def importance_log_weights(model, batch: Batch, observed: Sequence[str] = None, num_samples: int = 1000,
                           iterations: int = 100, seed=(0, 0)) -> tf.Tensor:
  """log p(observed, z_k) - log r(z_k) for k draws z_k ~ r: [k, B]. Their log-mean-exp is the IWAE
  bound, their mean the ELBO on the same draws."""
  observed = _given(observed or model.modality_names)
  estimators_for(model).check(model, observed[0], observed)
  return _log_weights(model, batch, observed, int(num_samples), tf.cast(seed, tf.int64), _iterations(iterations))


def iwae_log_likelihood(model, batch: Batch, observed: Sequence[str] = None, num_samples: int = 1000,
                        iterations: int = 100, seed=(0, 0)) -> tf.Tensor:
  """IWAE lower bound on log p(observed) ([B]); observed defaults to all modalities (log p(x,w))."""
  return log_mean_exp(importance_log_weights(model, batch, observed, num_samples, iterations, seed))


def iwae_conditional_log_likelihood(model, batch: Batch, target: str, given: Sequence[str],
                                    num_samples: int = 1000, iterations: int = 100, seed=(0, 0)) -> tf.Tensor:
  """IWAE estimate of the single-conditional log p(target | given) ([B]); see the module docstring."""
  given = _given(given)
  estimators_for(model).check(model, target, given)
  if target in given:
    raise ValueError(f"the IWAE conditional is for a missing target; {target!r} is given")
  return _iwae_conditional(model, batch, target, given, int(num_samples), tf.cast(seed, tf.int64),
                           _iterations(iterations))


def uses_iterative_sampling(model, target: str, given: Sequence[str]) -> bool:
  """Whether the single-conditional estimate of this model imputes the missing modality (eq 6)."""
  return estimators_for(model).imputes_missing and target not in _given(given)

