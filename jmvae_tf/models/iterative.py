"""Iterative sampling (eq 6 of the paper): inference of z from some modalities with a
model that has only a joint encoder.

JMVAE and hierarchical JMVAE encode q(z|x,w) only, so to condition on w alone the
paper fills the missing x with 0 and repeats z ~ q(z|x,w), x ~ p(x|z) with w held
fixed. Round i draws from fold_in(seed, i), so the chain of K rounds is the first
K rounds of the chain of K' > K rounds with the same seed. Everything is a compiled
graph with stateless seeds: the same (batch, seed) always gives the same imputation.
"""

from __future__ import annotations

from typing import Dict

import tensorflow as tf

from jmvae_tf import gaussian
from jmvae_tf.models.base import split_seed

Batch = Dict[str, tf.Tensor]

# Separates the random stream of the imputation from the other streams drawn from one seed.
_IMPUTE_STREAM = 0x1A7E


def _check(model, batch: Batch, missing: str):
  if missing not in model.generated_modalities or model.conditioning_modalities:
    raise ValueError(
      f"iterative sampling needs a joint model that generates {missing!r}; "
      f"{model.name} generates {model.generated_modalities}"
    )
  absent = [n for n in model.modality_names if n != missing and n not in batch]
  if absent:
    raise ValueError(
      f"iterative sampling of {missing!r} needs the other modalities; batch lacks {absent}"
    )


def _step(model, batch: Batch, missing: str, seed: tf.Tensor, sample_missing: bool):
  """One round: z ~ q(z_1|x,w), then the missing modality ~ p(.|z_1) (or its mean)."""
  seed_z, seed_x = split_seed(seed, 2)
  mean, variance = model.joint_posterior_layers(batch, training=False)[0]
  z = gaussian.sample(mean, variance, seed_z)
  dist = model.decode(z, names=[missing])[missing]
  # TFP wants int32 stateless seeds; the cast wraps, deterministically.
  value = dist.sample(seed=tf.cast(seed_x, tf.int32)) if sample_missing else dist.mean()
  return tf.cast(value, batch[missing].dtype)


def zero_filled(model, batch: Batch, missing: str) -> Batch:
  """The batch with the missing modality set to 0 (the paper's starting point)."""
  n = tf.shape(next(batch[k] for k in model.modality_names if k != missing))[0]
  spec = next(m for m in model.modality_specs if m.name == missing)
  return {
    **{k: batch[k] for k in model.modality_names if k != missing},
    missing: tf.zeros(tf.concat([[n], spec.shape], 0), tf.float32),
  }


@tf.function(reduce_retracing=True)
def _run_chain(model, batch: Batch, missing: str, iterations, seed, sample_missing: bool):
  def one_round(i, value):
    step_seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(i, tf.int64))
    return i + 1, _step(model, {**batch, missing: value}, missing, step_seed, sample_missing)

  _, value = tf.while_loop(
    lambda i, value: i < iterations, one_round, (tf.constant(0, tf.int64), batch[missing])
  )
  return value


def iterative_impute(
  model, batch: Batch, missing: str, iterations, seed, sample_missing=True, from_zero=True
) -> Batch:
  """The batch with `missing` imputed by `iterations` rounds of eq 6 (given modalities fixed).

  from_zero: start the missing modality at 0 (the paper); False continues from
  batch[missing] (to extend a chain). sample_missing: draw x ~ p(x|z) (eq 6); False
  uses the decoder's mean instead. iterations = 0 returns the starting point.
  `iterations` may be a Python int or a scalar tensor (e.g. a serving input).
  """
  _check(model, batch, missing)
  start = (
    zero_filled(model, batch, missing) if from_zero else {k: batch[k] for k in model.modality_names}
  )
  seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), _IMPUTE_STREAM)
  value = _run_chain(
    model, start, missing, tf.cast(iterations, tf.int64), seed, bool(sample_missing)
  )
  return {**start, missing: value}
