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

Every estimate is written once, over the models' inference API (`jmvae_tf.models.base`):
`posterior_layers` gives the proposal (imputing by iterative sampling where the model needs
it), `latent_draws` the z_1 of the eq 11 bound (hierarchical: A.2), `decode` the likelihoods
and `prior_log_density` the prior. Everything runs as tf.function graphs on whole batches with
stateless seeds (shape [2]).
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import tensorflow as tf

from jmvae_tf.core import gaussian
from jmvae_tf.core.graphs import compiled
from jmvae_tf.core.sampling import split_seed, tile_batch

Batch = Dict[str, tf.Tensor]


def log_mean_exp(x: tf.Tensor, axis: int = 0) -> tf.Tensor:
  """log (1/k) sum_k exp(x_k) along `axis`, stably."""
  k = tf.cast(tf.shape(x)[axis], x.dtype)
  return tf.reduce_logsumexp(x, axis=axis) - tf.math.log(k)


def per_sample(values: tf.Tensor, n: int) -> tf.Tensor:
  """[n*B] -> [n, B]."""
  return tf.reshape(values, [n, -1])


def _log_likelihood(model, z, tiled: Batch, names) -> tf.Tensor:
  """sum over `names` of log p(name|z) on the tiled batch ([n*B])."""
  dists = model.decode(z, tiled, names=names)
  return tf.add_n([dists[name].log_prob(tiled[name]) for name in names])


def _conditional(model, batch, target, given, n, seed, iterations):
  seed_posterior, seed_z = split_seed(seed, 2)
  layers = model.posterior_layers(batch, given, seed_posterior, iterations)
  z1 = model.latent_draws(layers, n, seed_z)
  log_lik = _log_likelihood(model, z1, tile_batch(batch, n), [target])
  return tf.reduce_mean(per_sample(log_lik, n), axis=0)


def _log_weights(model, batch, observed, k, seed, iterations):
  seed_posterior, seed_z, seed_prior = split_seed(seed, 3)
  layers = model.posterior_layers(batch, observed, seed_posterior, iterations)
  # For a marginal such as log p(w) the imputed q(z|x_K,w) sees one imputed x and covers little
  # of p(z|w); where the model imputes, half the draws come from the prior (defensive mixture
  # r = (p(z) + q)/2, Hesterberg 1995), which keeps the bound valid and the weights bounded.
  num_prior = k // 2 if model.uses_iterative_sampling(observed) else 0
  layer_seeds = split_seed(seed_z, len(layers))
  zs = [gaussian.sample_n(m, v, k - num_prior, s) for (m, v), s in zip(layers, layer_seeds)]
  if num_prior:
    rows = num_prior * tf.shape(layers[0][0])[0]
    zs = [tf.concat([zq, zp], 0) for zq, zp in zip(zs, model.sample_prior_layers(rows, seed_prior))]
  tiled = tile_batch(batch, k)
  log_q = tf.add_n(
    [
      gaussian.log_density(z, gaussian.tile_samples(m, k), gaussian.tile_samples(v, k))
      for z, (m, v) in zip(zs, layers)
    ]
  )
  log_prior = model.prior_log_density(zs, tiled)
  log_proposal = log_q
  if num_prior:
    log_proposal = tf.reduce_logsumexp(tf.stack([log_q, log_prior]), 0) - tf.math.log(2.0)
  generated = [name for name in observed if name in model.generated_modalities]
  log_lik = _log_likelihood(model, zs[0], tiled, generated) if generated else 0.0
  return per_sample(log_lik + log_prior - log_proposal, k)


def _iwae_conditional(model, batch, target, given, k, seed, iterations):
  seed_joint, seed_given = split_seed(seed, 2)
  observed = tuple(sorted(set(given) | {target}))
  joint = log_mean_exp(_log_weights(model, batch, observed, k, seed_joint, iterations))
  if set(given) <= set(model.conditioning_modalities):
    return joint  # a conditional model's joint over its target is log p(target | condition)
  return joint - log_mean_exp(_log_weights(model, batch, given, k, seed_given, iterations))


def _check(model, target: str, given) -> Tuple[str, ...]:
  given = model.check_given(given)
  if target not in model.generated_modalities:
    raise ValueError(f"{model.name} generates {model.generated_modalities}, not {target!r}")
  return given


def _seed(seed) -> tf.Tensor:
  return tf.cast(seed, tf.int64)


def conditional_log_likelihood(
  model,
  batch: Batch,
  target: str,
  given: Sequence[str],
  num_samples: int = 10,
  iterations: int = 100,
  seed=(0, 0),
) -> tf.Tensor:
  """Per-example eq 11 estimate of log p(target | given) ([B]); see the module docstring.

  target in given: the multi-conditional log p(x~|x,w); otherwise the single-conditional
  log p(x~|w) (iterations = K rounds of iterative sampling where the model needs it).
  """
  given = _check(model, target, given)
  if num_samples < 1:
    raise ValueError(f"num_samples must be at least 1, got {num_samples}")
  return compiled(_conditional, target, given, int(num_samples))(
    model, batch, target, given, int(num_samples), _seed(seed), tf.cast(iterations, tf.int64)
  )


def importance_log_weights(
  model,
  batch: Batch,
  observed: Sequence[str] = None,
  num_samples: int = 1000,
  iterations: int = 100,
  seed=(0, 0),
) -> tf.Tensor:
  """log p(observed, z_k) - log r(z_k) for k draws z_k ~ r: [k, B]. Their log-mean-exp is the
  IWAE bound, their mean the ELBO on the same draws."""
  observed = model.check_given(observed or model.modality_names)
  return compiled(_log_weights, observed, int(num_samples))(
    model, batch, observed, int(num_samples), _seed(seed), tf.cast(iterations, tf.int64)
  )


def iwae_log_likelihood(
  model,
  batch: Batch,
  observed: Sequence[str] = None,
  num_samples: int = 1000,
  iterations: int = 100,
  seed=(0, 0),
) -> tf.Tensor:
  """IWAE lower bound on log p(observed) ([B]); observed defaults to all modalities
  (log p(x,w); for CVAE/CMMA log p(target | condition))."""
  return log_mean_exp(importance_log_weights(model, batch, observed, num_samples, iterations, seed))


def iwae_conditional_log_likelihood(
  model,
  batch: Batch,
  target: str,
  given: Sequence[str],
  num_samples: int = 1000,
  iterations: int = 100,
  seed=(0, 0),
) -> tf.Tensor:
  """IWAE estimate of the single-conditional log p(target | given) ([B]); see the module
  docstring."""
  given = _check(model, target, given)
  if target in given:
    raise ValueError(f"the IWAE conditional is for a missing target; {target!r} is given")
  return compiled(_iwae_conditional, target, given, int(num_samples))(
    model, batch, target, given, int(num_samples), _seed(seed), tf.cast(iterations, tf.int64)
  )
