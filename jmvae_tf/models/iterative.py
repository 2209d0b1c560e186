"""Iterative sampling (eq 6 of the paper): inference of z from some modalities with a
model that has only a joint encoder.

JMVAE and hierarchical JMVAE encode q(z|x,w) only, so to condition on w alone the
paper fills the missing x with 0 and repeats z ~ q(z|x,w), x ~ p(x|z) with w held
fixed. With more than two modalities any set of them may be missing: each round draws z
from the joint encoder, then every missing modality from its decoder given that z (the
given ones held fixed). Round i draws from fold_in(seed, i), so the chain of K rounds is
the first K rounds of the chain of K' > K rounds with the same seed. Everything is a
compiled graph with stateless seeds: the same (batch, seed) always gives the same
imputation.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple, Union

import tensorflow as tf

from jmvae_tf.core import gaussian
from jmvae_tf.core.graphs import compiled
from jmvae_tf.core.missing import where_held
from jmvae_tf.core.sampling import split_seed

Batch = Dict[str, tf.Tensor]

# Separates the random stream of the imputation from the other streams drawn from one seed.
_IMPUTE_STREAM = 0x1A7E


def _names(missing: Union[str, Sequence[str]]) -> Tuple[str, ...]:
  return (missing,) if isinstance(missing, str) else tuple(missing)


def _check(model, batch: Batch, missing: Tuple[str, ...]):
  if not missing:
    raise ValueError("iterative sampling needs at least one missing modality; none was named")
  unknown = [m for m in missing if m not in model.modality_names]
  if unknown:
    raise ValueError(
      f"iterative sampling of {unknown[0]!r}: {model.name} has no such modality "
      f"(its modalities: {list(model.modality_names)})"
    )
  generated = model.generated_modalities
  if any(m not in generated for m in missing) or model.conditioning_modalities:
    raise ValueError(
      f"iterative sampling needs a joint model that generates {list(missing)}; "
      f"{model.name} generates {generated}"
    )
  absent = [n for n in model.modality_names if n not in missing and n not in batch]
  if absent:
    raise ValueError(
      f"iterative sampling of {list(missing)} needs the other modalities; batch lacks {absent}"
    )
  if len(missing) == len(model.modality_names):
    raise ValueError("iterative sampling needs at least one given modality")


def _step(
  model, batch: Batch, missing: Tuple[str, ...], seed: tf.Tensor, sample_missing: bool, fixed
):
  """One round: z ~ q(z_1|every modality), then each missing modality ~ p(.|z_1) (or its
  mean). `fixed`: the joint encoder's branch outputs of the given modalities."""
  seed_z, seed_x = split_seed(seed, 2)
  mean, variance = model.joint_posterior_layers(batch, training=False, branch_outputs=fixed)[0]
  z = gaussian.sample(mean, variance, seed_z)
  dists = model.decode(z, names=list(missing))
  # One missing modality keeps the seed of the two-modality chain (the paper's numbers).
  seeds = [seed_x] if len(missing) == 1 else split_seed(seed_x, len(missing))
  values = {}
  for name, s in zip(missing, seeds):
    # TFP wants int32 stateless seeds; the cast wraps, deterministically.
    value = dists[name].sample(seed=tf.cast(s, tf.int32)) if sample_missing else dists[name].mean()
    values[name] = tf.cast(value, batch[name].dtype)
  return values


def zero_filled(model, batch: Batch, missing) -> Batch:
  """The batch with the missing modalities set to 0 (the paper's starting point)."""
  missing = _names(missing)
  n = tf.shape(next(batch[k] for k in model.modality_names if k not in missing))[0]
  specs = {m.name: m for m in model.modality_specs}
  filled = {k: batch[k] for k in model.modality_names if k not in missing}
  for name in missing:
    filled[name] = tf.zeros(tf.concat([[n], specs[name].shape], 0), tf.float32)
  return filled


def _run_chain(model, batch: Batch, missing, iterations, seed, sample_missing: bool):
  # The given modalities do not change from round to round, so neither does what the joint
  # encoder's branches make of them: worked out once here, not K times (the same tensors;
  # for CelebA's image given, the four convolutions were most of each round).
  given = [name for name in model.modality_names if name not in missing]
  fixed = model.joint_branch_outputs(batch, given)

  def one_round(i, values):
    step_seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(i, tf.int64))
    current = {**batch, **dict(zip(missing, values))}
    drawn = _step(model, current, missing, step_seed, sample_missing, fixed)
    return i + 1, tuple(drawn[name] for name in missing)

  _, values = tf.while_loop(
    lambda i, values: i < iterations,
    one_round,
    (tf.constant(0, tf.int64), tuple(batch[name] for name in missing)),
  )
  return dict(zip(missing, values))


def iterative_impute(
  model, batch: Batch, missing, iterations, seed, sample_missing=True, from_zero=True
) -> Batch:
  """The batch with `missing` (a modality name, or several) imputed by `iterations` rounds of
  eq 6 (the given modalities fixed).

  from_zero: start the missing modalities at 0 (the paper); False continues from their
  values in `batch` (to extend a chain). sample_missing: draw x ~ p(x|z) (eq 6); False
  uses the decoder's mean instead. iterations = 0 returns the starting point.
  `iterations` may be a Python int or a scalar tensor (e.g. a serving input).
  """
  missing = _names(missing)
  _check(model, batch, missing)
  # The model's order, so that the same set of missing modalities draws the same values.
  missing = tuple(n for n in model.modality_names if n in missing)
  start = (
    zero_filled(model, batch, missing) if from_zero else {k: batch[k] for k in model.modality_names}
  )
  seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), _IMPUTE_STREAM)
  values = compiled(_run_chain, missing, bool(sample_missing))(
    model, start, missing, tf.cast(iterations, tf.int64), seed, bool(sample_missing)
  )
  return {**start, **values}


def impute_absent(model, batch: Batch, present: Dict[str, tf.Tensor], iterations: int, seed):
  """`batch` with each example's absent modalities (`present[name]` False; their values zeros)
  imputed by `iterations` rounds of eq 6 from there, what it holds fixed: per example, in the
  graph (each round draws every modality for the whole batch and keeps the draw only where the
  example lacks it). No gradient flows back through the imputation: what trains on it is what
  reads it (JMVAE's bound of an incomplete example, `JMVAE.incomplete_loss_terms`)."""
  names = model.modality_names
  seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), _IMPUTE_STREAM)
  # From 0, whatever stands in for a missing value (the paper's start; no trace of it leaks).
  batch = {**batch, **{name: where_held(present[name], batch[name]) for name in names}}
  current = {name: batch[name] for name in names}
  for i in range(int(iterations)):
    seed_z, seed_x = split_seed(tf.random.experimental.stateless_fold_in(seed, i), 2)
    mean, variance = model.joint_posterior_layers(current, training=False)[0]
    dists = model.decode(gaussian.sample(mean, variance, seed_z), names=list(names))
    for name, s in zip(names, split_seed(seed_x, len(names))):
      drawn = tf.cast(dists[name].sample(seed=tf.cast(s, tf.int32)), batch[name].dtype)
      current[name] = where_held(present[name], batch[name], drawn)
  return {**batch, **{name: tf.stop_gradient(current[name]) for name in names}}
