"""Stateless randomness and sample-major tiling, shared by the objectives and every consumer
that draws from a model: a seed is an int [2] tensor, split into independent ones; n draws per
example lie sample-major (row s*B + b is example b's draw s)."""

from __future__ import annotations

from typing import Dict

import tensorflow as tf

from jmvae_tf.core import gaussian

Batch = Dict[str, tf.Tensor]


def split_seed(seed, n: int):
  """n independent stateless seeds from one (shape [2], any integer dtype)."""
  return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), n), axis=0)


def tile_batch(batch: Batch, n: int) -> Batch:
  """Every tensor of `batch` tiled n times, sample-major (see gaussian.tile_samples)."""
  return {name: gaussian.tile_samples(value, n) for name, value in batch.items()}
