"""jmvae_tf/models/keras_internals.py: the tf-keras internals the project touches exist in the
installed tf-keras and do what the project relies on, so an upgrade that moves them fails here
rather than in a run."""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from jmvae_tf.models import keras_internals


def test_the_legacy_adams_state_is_made_before_the_first_step():
  variables = [tf.Variable(np.ones((3, 2), np.float32)), tf.Variable(np.zeros(2, np.float32))]
  optimizer = keras.optimizers.legacy.Adam(1e-3)
  assert hasattr(optimizer, "_create_all_weights") and hasattr(optimizer, "_name")
  assert not optimizer.variables()
  keras_internals.create_optimizer_state(optimizer, variables)
  made = {v.name.split("/")[-1].split(":")[0] for v in optimizer.variables()}
  assert {"iter", "m", "v"} <= made  # the step counter and both moments of each variable
  assert len([v for v in optimizer.variables() if v.shape == (3, 2)]) == 2
  before = list(optimizer.variables())
  optimizer.apply_gradients(zip([tf.ones((3, 2)), tf.ones(2)], variables))
  assert list(optimizer.variables()) == before  # the first step made nothing more
  assert int(optimizer.iterations) == 1


def test_the_new_optimisers_are_built_through_their_public_build():
  variables = [tf.Variable(np.ones(4, np.float32))]
  optimizer = keras.optimizers.Adam(1e-3)
  keras_internals.create_optimizer_state(optimizer, variables)
  assert len(optimizer.variables()) == 3  # the step counter and the two moments


def test_the_test_step_counter_restarts_at_every_evaluate():
  seen = []

  class Counting(keras.Model):
    def call(self, x):
      return x

    def test_step(self, data):
      seen.append(keras_internals.test_step_counter(self).numpy())
      return {}

  model = Counting()
  model.compile(run_eagerly=True)
  data = tf.data.Dataset.from_tensor_slices(tf.zeros([6, 1])).batch(2)
  model.evaluate(data, verbose=0)
  model.evaluate(data, verbose=0)
  assert seen == [0, 1, 2, 0, 1, 2]
