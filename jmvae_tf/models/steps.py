"""What Keras' fit and evaluate call on a model, shared by every objective: compile (with XLA
where it was asked for), the train and test steps (the loss scaled for a distribution
strategy, one metric per loss term), their stateless seeds, and the optimisers' state made
before the first step. The objectives say what a step computes (`loss_terms`); this says how
Keras runs it.
"""

from __future__ import annotations

from typing import Dict

import tensorflow as tf

from jmvae_tf.core import missing
from jmvae_tf.models import keras_internals

Batch = Dict[str, tf.Tensor]
LOSS = "loss"
# Under this key a step's terms may carry {term: per-example weight [B]}: what each metric
# averages over (an incomplete batch's nll_label over the examples that hold a label).
WEIGHTS = "term_weights"


class KerasSteps:
  """Mixin of `MultimodalVAE`, before keras.Model among its bases. It relies on the model's
  `loss_terms(batch, seed, training)` (and, for batches with masks, `incomplete_loss_terms`),
  `trackers` ({term: keras Mean}, the loss first), `kl_weight`, `seed` and `modality_names`."""

  # Where compile put XLA under a distribution strategy: around each replica's pass.
  per_replica_jit = False

  @property
  def metrics(self):
    return list(self.trackers.values())

  def call(self, inputs: Batch, training=None):
    """The per-example loss terms with a fixed seed (Keras needs a `call`)."""
    return self.loss_terms(inputs, tf.constant([self.seed, 0], tf.int64), training=training)

  def step_seed(self, counter: tf.Variable, stream: int) -> tf.Tensor:
    """A stateless seed from (model seed, stream, step), distinct per replica.

    Depends only on checkpointed state, so a resumed run draws what an
    uninterrupted one would have drawn.
    """
    seed = tf.stack([tf.constant(self.seed * 2 + stream, tf.int64), tf.cast(counter, tf.int64)])
    replica = tf.distribute.get_replica_context()
    if replica is not None and replica.num_replicas_in_sync > 1:
      seed = tf.random.experimental.stateless_fold_in(seed, replica.replica_id_in_sync_group)
    return seed

  def _check_batch(self, batch: Batch):
    missing = [n for n in self.modality_names if n not in batch]
    if missing:
      raise ValueError(
        f"{type(self).__name__}: input batch lacks modalities {missing}; it has {sorted(batch)}"
      )

  def _update_metrics(self, terms: Dict[str, tf.Tensor]):
    weights = terms.get(WEIGHTS)
    for name, tracker in self.trackers.items():
      tracker.update_state(terms[name], sample_weight=None if weights is None else weights[name])
    return {name: tracker.result() for name, tracker in self.trackers.items()}

  def step_terms(self, data: Batch, seed, training=None, with_gradients=False):
    """The per-example terms of a step on `data`: `loss_terms` for a complete batch (one
    without masks: exactly the code of before); for a batch with masks
    (jmvae_tf.core.missing.PRESENT), `loss_terms` where every example of it is complete (a
    tf.cond: the same code and work as without masks) and `incomplete_loss_terms` where some
    example lacks one of the model's modalities, both with per-term weights (WEIGHTS).
    with_gradients: (terms, the gradients of the step's loss) instead, each branch taking its
    own gradients (none flows through the tf.cond, which XLA could not compile for a batch of
    unknown size)."""
    present = missing.of_batch(data)
    if present is None:
      return self._with_gradients(self.loss_terms, data, seed, training, with_gradients, False)
    batch = missing.without_masks(data)
    # The model's modalities only (a CVAE of two of three); one the masks leave out is held.
    like = tf.cast(present[next(iter(present))], tf.bool)
    held = {
      n: tf.cast(present[n], tf.bool) if n in present else tf.ones_like(like)
      for n in self.modality_names
    }

    def complete(batch, seed, training):
      terms = self.loss_terms(batch, seed, training=training)
      ones = tf.ones_like(terms[LOSS])
      return {**{n: terms[n] for n in self.trackers}, WEIGHTS: {n: ones for n in self.trackers}}

    def incomplete(batch, seed, training):
      terms = self.incomplete_loss_terms(batch, held, seed, training=training)
      return {**{n: terms[n] for n in self.trackers}, WEIGHTS: terms[WEIGHTS]}

    every = tf.reduce_all(tf.stack([tf.reduce_all(h) for h in held.values()]))
    return tf.cond(
      every,
      lambda: self._with_gradients(complete, batch, seed, training, with_gradients, True),
      lambda: self._with_gradients(incomplete, batch, seed, training, with_gradients, True),
    )

  def _with_gradients(self, terms_fn, batch, seed, training, with_gradients, in_branch):
    if not with_gradients:
      return terms_fn(batch, seed, training=training)
    with tf.GradientTape() as tape:
      terms = terms_fn(batch, seed, training=training)
      # Sum over this replica's examples / global batch: gradients are summed across replicas.
      loss = tf.nn.compute_average_loss(terms[LOSS])
    if not in_branch:  # the code of before
      return terms, tape.gradient(loss, self.trainable_variables)
    # A tf.cond branch returns tensors: a variable the branch does not reach gets 0, not None.
    zero = tf.UnconnectedGradients.ZERO
    return terms, tape.gradient(loss, self.trainable_variables, unconnected_gradients=zero)

  def compile(self, optimizer="adam", jit_compile=False, **kwargs):
    """Like keras.Model.compile. `jit_compile` outside any distribution strategy compiles
    the whole step with XLA (Keras' own: forward, backward, optimiser update and metrics
    fused); under a strategy only each replica's forward and backward pass, because
    Keras' whole-step XLA cannot reach variables mirrored on other devices."""
    whole_step = bool(jit_compile) and not tf.distribute.has_strategy()
    super().compile(optimizer=optimizer, jit_compile=whole_step, **kwargs)
    self.per_replica_jit = bool(jit_compile) and not whole_step
    self._gradients_fn = self.per_replica(self._loss_and_gradients)

  def per_replica(self, fn):
    """`fn` (a replica's forward and backward pass) compiled with XLA where `compile` put XLA
    there, under a distribution strategy; else as it is."""
    return tf.function(fn, jit_compile=True) if self.per_replica_jit else fn

  def optimizer_groups(self):
    """[(optimiser, the variables it updates)] for every optimiser train_step applies."""
    return [(self.optimizer, self.trainable_variables)]

  def build_optimizer_state(self):
    """Creates every optimiser's state (its step counter, hyperparameters and Adam's
    moments) now, after compile and before the first step. Made inside the first trace of
    the training function instead, new variables make tf.function trace that function a
    second time (benchmarks/startup.py --optimizer_state=first_step shows the cost)."""
    for optimizer, variables in self.optimizer_groups():
      keras_internals.create_optimizer_state(optimizer, variables)

  def _loss_and_gradients(self, data, seed):
    return self.step_terms(data, seed, training=True, with_gradients=True)

  def train_step(self, data):
    self._check_batch(data)
    seed = self.step_seed(self.optimizer.iterations, stream=0)
    terms, gradients = self._gradients_fn(data, seed)
    self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
    results = self._update_metrics(terms)
    results["kl_weight"] = tf.identity(self.kl_weight)
    return results

  def test_step(self, data):
    self._check_batch(data)
    # The counter restarts at 0 for every evaluate(): the same data gives the same numbers.
    seed = self.step_seed(keras_internals.test_step_counter(self), stream=1)
    terms = self.step_terms(data, seed, training=False)
    return self._update_metrics(terms)
