"""Iterative sampling of a missing modality (eq 6; Rezende et al. 2014).

JMVAE and hierarchical JMVAE have only the joint encoder q(z|x,w), so to condition
on w alone the paper fills the missing x with 0 and repeats
z ~ q(z|x,w), x ~ p(x|z) with w held fixed. Everything here is a compiled graph
with stateless seeds: the same (batch, seed) always gives the same imputation.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import tensorflow as tf

from jmvae_tf import gaussian
from jmvae_tf.models import HierarchicalJMVAE, JMVAE
from jmvae_tf.models.base import split_seed

Batch = Dict[str, tf.Tensor]

# Separates the random stream of the imputation from the other streams drawn from one seed.
_IMPUTE_STREAM = 0x1A7E


def supports_iterative_sampling(model) -> bool:
  """Models with a joint encoder and one decoder per modality (JMVAE, JMVAE-kl, hierarchical)."""
  return isinstance(model, (JMVAE, HierarchicalJMVAE))


def _check(model, batch: Batch, missing: str):
  if not supports_iterative_sampling(model):
    raise TypeError(f"iterative sampling needs a JMVAE-family model, got {type(model).__name__}")
  if missing not in model.modality_names:
    raise ValueError(f"no modality {missing!r} in {model.modality_names}")
  absent = [n for n in model.modality_names if n != missing and n not in batch]
  if absent:
    raise ValueError(f"iterative sampling of {missing!r} needs the other modalities; batch lacks {absent}")


def _step(model, batch: Batch, missing: str, seed: tf.Tensor, sample_missing: bool) -> Tuple[tf.Tensor, tf.Tensor]:
  """One round: z ~ q(z_1|x,w), then the missing modality ~ p(.|z_1) (or its mean)."""
  seed_z, seed_x = split_seed(seed, 2)
  mean, variance = model.encode(batch, training=False)
  z = gaussian.sample(mean, variance, seed_z)
  dist = model.decoders[missing](z, training=False)
  # TFP wants int32 stateless seeds; the cast wraps, deterministically.
  value = dist.sample(seed=tf.cast(seed_x, tf.int32)) if sample_missing else dist.mean()
  return tf.cast(value, batch[missing].dtype), z


def zero_filled(model, batch: Batch, missing: str) -> Batch:
  """The batch with the missing modality set to 0 (the paper's starting point)."""
  n = tf.shape(next(batch[k] for k in model.modality_names if k != missing))[0]
  spec = next(m for m in model.modality_specs if m.name == missing)
  return {**{k: batch[k] for k in model.modality_names if k != missing},
          missing: tf.zeros(tf.concat([[n], spec.shape], 0), tf.float32)}


@tf.function(reduce_retracing=True)
def _run_chain(model, batch: Batch, missing: str, iterations: tf.Tensor, seed: tf.Tensor,
               sample_missing: bool) -> Tuple[tf.Tensor, tf.Tensor]:
  """(the missing modality after `iterations` rounds, the z of the last round)."""
  n = tf.shape(batch[missing])[0]

  def one_round(i, value, z):
    del z
    step_seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(i, tf.int64))
    value, z = _step(model, {**batch, missing: value}, missing, step_seed, sample_missing)
    return i + 1, value, z

  _, value, z = tf.while_loop(lambda i, value, z: i < iterations, one_round,
                              (tf.constant(0, tf.int64), batch[missing], tf.zeros([n, model.latent_dim])))
  return value, z


def iterative_impute_with_latent(model, batch: Batch, missing: str, iterations, seed, sample_missing: bool = True,
                                 from_zero: bool = True) -> Tuple[Batch, tf.Tensor]:
  """`iterative_impute`, also returning the z of the last round (zeros after 0 rounds),
  so a caller can read the last round's p(missing|z) (as the serving signatures do)."""
  _check(model, batch, missing)
  start = zero_filled(model, batch, missing) if from_zero else {k: batch[k] for k in model.modality_names}
  seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), _IMPUTE_STREAM)
  iterations = tf.cast(iterations, tf.int64)
  value, z = _run_chain(model, start, missing, iterations, seed, bool(sample_missing))
  return {**start, missing: value}, z


def iterative_impute(model, batch: Batch, missing: str, iterations, seed, sample_missing: bool = True,
                     from_zero: bool = True) -> Batch:
  """The batch with `missing` imputed by `iterations` rounds of eq 6 (given modalities fixed).

  from_zero: start the missing modality at 0 (the paper); False continues from
  batch[missing] (to extend a chain). sample_missing: draw x ~ p(x|z) (eq 6); False
  uses the decoder's mean instead. iterations = 0 returns the starting point.
  `iterations` may be a Python int or a scalar tensor (e.g. a serving input).
  """
  return iterative_impute_with_latent(model, batch, missing, iterations, seed, sample_missing, from_zero)[0]


def imputation_trajectory(model, batch: Batch, missing: str, steps: Sequence[int], seed) -> List[tf.Tensor]:
  """For each count k in `steps`, the mean of p(missing|z), z ~ q(z|x_k, given), where x_k is
  the missing modality after k rounds from 0: what Figure 3 shows row by row.

  One chain is extended from count to count, so the rows are successive states of it.
  """
  if list(steps) != sorted(steps) or any(k < 0 for k in steps):
    raise ValueError(f"steps must be non-negative and increasing, got {list(steps)}")
  seed = tf.cast(seed, tf.int64)
  state = zero_filled(model, batch, missing)
  done, rows = 0, []
  for i, k in enumerate(steps):
    if k > done:
      state = iterative_impute(model, state, missing, k - done,
                               tf.random.experimental.stateless_fold_in(seed, 2 * i), from_zero=False)
      done = k
    rows.append(_step(model, state, missing, tf.random.experimental.stateless_fold_in(seed, 2 * i + 1),
                      sample_missing=False)[0])
  return rows
