"""The tf-keras internals this project touches, and only here (tf-keras 2.21, BUILD.md's pin).

  optimizer._name, optimizer._create_all_weights(variables)
      tf-keras' legacy (OptimizerV2) Adam makes its state (step counter, hyperparameters,
      moments) inside the first apply_gradients, under its name scope. Made there, inside the
      first trace of the training function, new variables make tf.function trace it a second
      time, and under a MirroredStrategy over several devices the first step's seed reads a
      counter not yet initialised; `create_optimizer_state` makes them beforehand, as
      apply_gradients would. The public `build` exists only on the new optimisers.
  model._test_counter
      Keras' count of the test steps of the current evaluate(), reset to 0 at its start: the
      seed of every test step derives from it, so the same data gives the same numbers at
      every evaluation (`test_step_counter`). Keras offers no public counter of test steps.

tests/test_models_keras_internals.py checks both against the installed tf-keras, so an upgrade
that moves them fails there rather than in a run.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def create_optimizer_state(optimizer, variables: Sequence[tf.Variable]) -> None:
  """Every variable `optimizer` needs to update `variables`, made now (as its apply_gradients
  would on the first step, in an init_scope under its name)."""
  if hasattr(optimizer, "_create_all_weights"):  # tf-keras' legacy OptimizerV2
    with tf.name_scope(optimizer._name):  # pylint: disable=protected-access
      optimizer._create_all_weights(variables)  # pylint: disable=protected-access
  else:
    optimizer.build(variables)


def test_step_counter(model) -> tf.Variable:
  """The number of test steps run in the current evaluate() (0 at its start)."""
  return model._test_counter  # pylint: disable=protected-access
