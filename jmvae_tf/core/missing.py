"""Incomplete examples: which training examples hold which modality, and how a batch says so.

One representation, whatever made the gap (a share hidden on demand, an empty cell in a user's
file): a training batch of examples that may lack modalities holds, beside each modality's
values, `batch[PRESENT] = {modality: bool [B]}`, True where the example holds it; an absent
value is zeros there (no pixel on, no class, no word: a valid input of every network, whose
output the objectives then leave out, `jmvae_tf/models`). A batch without PRESENT is complete,
as every batch was before, and trains by exactly the code it did.

Missingness on demand, `--data_options=missing=label:0.99` (several repeat the key:
`missing=digit:0.5,missing=fashion:0.5`; in Python one value, "digit:0.5,fashion:0.5"): the
named modality is hidden from that share of the training examples, the same examples every
epoch (hidden afresh each epoch, every label would be seen), chosen as a pure function of the
data seed: example i lacks modality m where its stateless random key (keyed on the data seed and
a stream of m's name) is among the round(share * N) lowest. So the count is exact, a resumed
run hides what an uninterrupted one did, and modalities are hidden independently of one
another. The held-out splits are never touched.
"""

from __future__ import annotations

import zlib
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

PRESENT = "present"  # the batch key of the masks
OPTION = "missing"  # the --data_options key

Shares = Tuple[Tuple[str, float], ...]
Presence = Dict[str, np.ndarray]  # {modality: bool [N]}

# Separates the hiding's random stream from the others drawn from the data seed.
_HIDE_STREAM = 0x41DE


def hidden_examples(num_examples: int, share: float, seed: int, name: str) -> np.ndarray:
  """bool [N]: the examples from which modality `name` is hidden, round(share * N) of them,
  a pure function of (seed, name) (module docstring)."""
  count = int(round(share * num_examples))
  if count == 0:
    return np.zeros(num_examples, bool)
  # A full-range random integer per example, the count lowest hidden. Not index_shuffle's
  # positions: its permutations under two seeds are far from independent (the indicators
  # "position < N/2" of two streams correlate by up to 0.7), and the modalities must not be.
  stream = zlib.crc32(name.encode("utf-8"))
  keys = tf.random.stateless_uniform(
    [num_examples],
    seed=tf.constant([int(seed), _HIDE_STREAM ^ stream], tf.int64),
    minval=None,
    maxval=None,
    dtype=tf.int64,
  ).numpy()
  hidden = np.zeros(num_examples, bool)
  hidden[np.argsort(keys, kind="stable")[:count]] = True
  return hidden


def presence(
  num_examples: int,
  modality_names: Sequence[str],
  shares: Shares,
  seed: int,
  present: Optional[Mapping[str, np.ndarray]] = None,
) -> Optional[Presence]:
  """{modality: bool [N]} of the training examples: what `present` says (a data set's own
  gaps; default every example holds every modality) less what `shares` hides under the data
  seed `seed`. None where nothing is hidden and nothing absent: the complete batches of before."""
  if not shares and (present is None or all(np.all(p) for p in present.values())):
    return None
  out = {}
  for name in modality_names:
    held = np.ones(num_examples, bool) if present is None else np.asarray(present[name], bool)
    out[name] = held.copy()
  for name, share in shares:
    out[name] &= ~hidden_examples(num_examples, share, seed, name)
  return out


def describe(table: Presence, what: str = "training examples") -> str:
  """One line: how many examples lack each modality, how many are complete, how many hold none."""
  n = len(next(iter(table.values())))
  held = np.stack(list(table.values()))
  lacking = ", ".join(f"{int((~p).sum()):,} lack {k!r}" for k, p in table.items() if not p.all())
  complete = int(held.all(axis=0).sum())
  none = int((~held.any(axis=0)).sum())
  text = f"of {n:,} {what}: {lacking or 'none lacks a modality'}; {complete:,} complete"
  return text + (f"; {none:,} hold no modality (left out)" if none else "")


# --- batches ---------------------------------------------------------------------------------
def where_held(held: tf.Tensor, value: tf.Tensor, other: Optional[tf.Tensor] = None):
  """`value` [B, ...] where `held` (bool [B]), else `other` (default zeros): per example, in
  the graph. A tf.where, so nothing flows back into the side not taken."""
  other = tf.zeros_like(value) if other is None else other
  shape = tf.concat([tf.shape(held), tf.ones([value.shape.rank - 1], tf.int32)], 0)
  return tf.where(tf.reshape(held, shape), value, other)


def pattern_weights(present: Dict[str, tf.Tensor], names: Sequence[str]) -> tf.Tensor:
  """float [B]: each example's weight where every pattern of held modalities (which of `names`
  it holds) weighs the same in the batch: n / (P * n_p), with n the examples holding any, P the
  patterns among them and n_p the examples of the example's own; 0 for one holding none. The
  weights sum to n, so a batch of one pattern keeps weight 1 everywhere."""
  code = tf.add_n([tf.cast(present[n], tf.int32) * (2**k) for k, n in enumerate(names)])
  held = tf.cast(code > 0, tf.float32)
  counts = tf.reduce_sum(tf.one_hot(code, 2 ** len(names)) * held[:, None], axis=0)
  patterns = tf.reduce_sum(tf.cast(counts > 0, tf.float32))
  own = tf.gather(counts, code)
  return held * tf.math.divide_no_nan(tf.reduce_sum(held), patterns * own)


def attach(batch: Dict[str, tf.Tensor], present: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """`batch` with the masks `present` ({modality: bool [B]}) under PRESENT and every absent
  value zeros: the one representation of a gap (module docstring)."""
  out = dict(batch)
  for name, held in present.items():
    out[name] = where_held(held, batch[name])
  out[PRESENT] = {name: tf.convert_to_tensor(held, tf.bool) for name, held in present.items()}
  return out


def gather(table: Optional[Dict[str, tf.Tensor]], batch, indices):
  """`batch` of the training examples `indices`, with their masks from `table` ({modality: bool
  [N]} tensors, from `presence`), or as it is where `table` is None."""
  if table is None:
    return batch
  return attach(batch, {name: tf.gather(held, indices) for name, held in table.items()})


def as_tensors(table: Optional[Presence]) -> Optional[Dict[str, tf.Tensor]]:
  return None if table is None else {k: tf.constant(v) for k, v in table.items()}


def of_batch(batch: Mapping) -> Optional[Dict[str, tf.Tensor]]:
  """The batch's masks, or None for a complete batch (one without PRESENT)."""
  return batch.get(PRESENT)


def without_masks(batch: Mapping) -> Dict[str, tf.Tensor]:
  return {k: v for k, v in batch.items() if k != PRESENT}
