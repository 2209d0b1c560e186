"""The base model that every objective specialises.

`MultimodalVAE` owns what all objectives share: the train/test steps (loss scaled
for a distribution strategy, one metric per loss term), seeded sampling that is
reproducible under a strategy, and the KL warm-up weight. A subclass builds its
networks and implements `loss_terms`, which returns per-example terms.
"""

from __future__ import annotations

from typing import Dict, Sequence

import tensorflow as tf
import tf_keras as keras

from jmvae_tf.modalities import Modality

Batch = Dict[str, tf.Tensor]
LOSS = "loss"


def split_seed(seed, n: int):
  """n independent stateless seeds from one (shape [2], any integer dtype)."""
  return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), n), axis=0)


class MultimodalVAE(keras.Model):
  """Base of JMVAE, JMVAEKL, HierarchicalJMVAE, CVAE and CMMA.

  Subclasses pass `term_names` (the per-example terms `loss_terms` returns besides
  "loss"), build their networks in `__init__` and implement `loss_terms`.
  """

  def __init__(self, modalities: Sequence[Modality], latent_dim: int, term_names: Sequence[str],
               seed: int = 0, name=None):
    super().__init__(name=name)
    self.term_names = tuple(term_names)
    self.xla = False  # see `compile`
    self.modality_specs = tuple(modalities)
    self.latent_dim = int(latent_dim)
    self.seed = int(seed)
    # Weight of the KL-to-prior terms; a callback raises it from 0 to 1 (warm-up).
    # A variable (not a Python float) so it is checkpointed and changes retrace nothing.
    self.kl_weight = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="kl_weight",
                                 aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.trackers = {n: keras.metrics.Mean(name=n) for n in (LOSS,) + tuple(self.term_names)}

  # --- what subclasses implement ------------------------------------------------------------
  def loss_terms(self, batch: Batch, seed: tf.Tensor, training=None) -> Dict[str, tf.Tensor]:
    """Per-example terms ([B] each) of the loss, including the total under "loss"."""
    raise NotImplementedError

  # --- shared machinery --------------------------------------------------------------------
  @property
  def modality_names(self):
    return tuple(m.name for m in self.modality_specs)

  @property
  def metrics(self):
    return list(self.trackers.values())

  def dummy_batch(self, batch_size: int = 1) -> Batch:
    return {m.name: tf.zeros((batch_size,) + m.shape) for m in self.modality_specs}

  def initialize(self):
    """Creates every variable (before restoring a checkpoint or counting parameters)."""
    self.loss_terms(self.dummy_batch(), tf.constant([0, 0], tf.int64), training=False)
    return self

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
      raise ValueError(f"{type(self).__name__}: input batch lacks modalities {missing}; "
                       f"it has {sorted(batch)}")

  def _update_metrics(self, terms: Dict[str, tf.Tensor]):
    for name, tracker in self.trackers.items():
      tracker.update_state(terms[name])
    return {name: tracker.result() for name, tracker in self.trackers.items()}

  def compile(self, optimizer="adam", jit_compile=False, **kwargs):
    """Like keras.Model.compile, but `jit_compile` compiles only each replica's forward
    and backward pass with XLA, not the whole step: Keras' whole-step XLA cannot
    reach variables mirrored on other devices, so it fails under MirroredStrategy
    with several devices, while this works under any strategy."""
    super().compile(optimizer=optimizer, jit_compile=False, **kwargs)
    self.xla = bool(jit_compile)
    self._gradients_fn = tf.function(self._loss_and_gradients, jit_compile=True) if self.xla \
        else self._loss_and_gradients

  def _loss_and_gradients(self, data, seed):
    with tf.GradientTape() as tape:
      terms = self.loss_terms(data, seed, training=True)
      # Sum over this replica's examples / global batch: gradients are summed across replicas.
      loss = tf.nn.compute_average_loss(terms[LOSS])
    return terms, tape.gradient(loss, self.trainable_variables)

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
    # _test_counter restarts at 0 for every evaluate(): the same data gives the same numbers.
    terms = self.loss_terms(data, self.step_seed(self._test_counter, stream=1), training=False)
    return self._update_metrics(terms)
