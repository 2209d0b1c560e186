"""One compiled graph per Python key: what the estimators, tables, coherence and iterative
sampling run their per-column work through."""

from __future__ import annotations

import functools
from typing import Callable, Dict

import tensorflow as tf

_GRAPHS: Dict[tuple, Callable] = {}


def compiled(fn: Callable, *key) -> Callable:
  """`fn` as a tf.function of its own for each `key` (its Python arguments: which target,
  which given modalities), so that a table of columns is not one function retraced for each
  (TensorFlow warns of that, and keeps one trace cache for all)."""
  if (fn, key) not in _GRAPHS:
    # A partial, not a closure: TensorFlow counts the traces of all functions of one code
    # object together (and warns), and a partial has none.
    _GRAPHS[(fn, key)] = tf.function(functools.partial(fn), reduce_retracing=True)
  return _GRAPHS[(fn, key)]
