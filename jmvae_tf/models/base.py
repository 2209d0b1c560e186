"""The base model that every objective specialises.

`MultimodalVAE` owns what all objectives share: the KL warm-up weight, one metric per loss
term, and the **inference API** below, the only thing evaluation, serving, the projector and
the figures call. How Keras runs its steps is `jmvae_tf.models.steps.KerasSteps`, a base of it.

Inference API (B examples, D = latent_dim, seeds are stateless int [2]):

  modality_names           every modality the model reads, in the config's order
  generated_modalities     those with a decoder p(.|z)
  conditioning_modalities  those it only conditions on (CVAE/CMMA's condition)
  can_infer(given)         whether z can be inferred from the modalities `given`
  check_given(given)       the sorted tuple, or a ValueError saying what it cannot do
  inference_subsets()      every set of modalities z can be inferred from
  uses_iterative_sampling(given)  whether inferring z from `given` runs eq 6
  posterior_layers(batch, given, seed, num_steps)  [(mean, variance)] over z_1..z_L
                           from the modalities `given` (any non-empty subset the
                           model supports); z_1 is what the decoders read
  posterior(...)           posterior_layers(...)[0]
  latent_draws(layers, n, seed)    n draws of z_1 per example [n*B, D], sample-major
  decode(z, batch, names)  {name: tfp Distribution} for the generated modalities;
                           a conditional model reads its condition from `batch`
  sample_prior_layers(n, seed) / sample_prior(n, seed)   draws from the prior p(z)
  prior_log_density(zs, batch)   log p(z_1..z_L) [B] (CMMA: p(z|condition in batch))
  describe_inference(given, num_steps)   one line for reports

Everything in the API runs in inference mode (BatchNorm uses its moving
statistics). A subclass builds its networks, names its loss terms (`loss_term_names`) and
implements `loss_terms`, `joint_posterior_layers`, `inference_problem` (what it can infer
from) and whichever API methods differ.
"""

from __future__ import annotations

import itertools
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

from jmvae_tf.core import gaussian
from jmvae_tf.core.modalities import Modality
from jmvae_tf.core.options import ModelOptions
from jmvae_tf.core.sampling import split_seed
from jmvae_tf.models import registry
from jmvae_tf.models.config import ModelConfig
from jmvae_tf.models.steps import LOSS, KerasSteps
from jmvae_tf.networks.architecture import Architecture
from jmvae_tf.networks.mnist import MNIST_MLP

Batch = Dict[str, tf.Tensor]
Layers = List[Tuple[tf.Tensor, tf.Tensor]]


def _sorted_names(given) -> Tuple[str, ...]:
  return (given,) if isinstance(given, str) else tuple(sorted(set(given)))


class MultimodalVAE(KerasSteps, keras.Model):
  """Base of JMVAE, JMVAEKL, HierarchicalJMVAE, CVAE and CMMA (see the module docstring).

  A model is built from its modalities, its options (`jmvae_tf/core/options.py`; it keeps them as
  `options`) and an architecture (`jmvae_tf/networks/architecture.py`, the paper's MNIST MLPs by
  default), whose decoders take the options' decoder variance.
  """

  def __init__(
    self,
    modalities: Sequence[Modality],
    options: ModelOptions,
    architecture: Optional[Architecture] = None,
    name=None,
  ):
    super().__init__(name=name)
    if not isinstance(options, ModelOptions):
      raise TypeError(f"{type(self).__name__} takes a ModelOptions, got {type(options).__name__}")
    self.modality_specs = tuple(modalities)
    # The modalities in the data set's order (run.json's); a one-way model reorders its own.
    self.data_modalities = self.modality_specs
    # The data set it was built for or trained on (run.json's "dataset"; "" where none is).
    self.dataset_name = ""
    self.options = options.bind(self.modality_names)
    self.latent_dim = int(options.latent_dim)
    self.seed = int(options.seed)
    self.architecture = architecture or MNIST_MLP
    # Weight of the KL-to-prior terms; a callback raises it from 0 to 1 (warm-up).
    # A variable (not a Python float) so it is checkpointed and changes retrace nothing.
    self.kl_weight = tf.Variable(
      1.0,
      trainable=False,
      dtype=tf.float32,
      name="kl_weight",
      aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )
    self.term_names = tuple(self.loss_term_names())
    self.trackers = {n: keras.metrics.Mean(name=n) for n in (LOSS,) + self.term_names}

  # --- what subclasses implement -----------------------------------------------------------
  def loss_term_names(self) -> Sequence[str]:
    """The names of the per-example terms `loss_terms` reports besides the total (called by
    the constructor, which has set modality_specs and options)."""
    raise NotImplementedError

  def loss_terms(self, batch: Batch, seed: tf.Tensor, training=None) -> Dict[str, tf.Tensor]:
    """Per-example terms ([B] each) of the loss, including the total under "loss"."""
    raise NotImplementedError

  def joint_posterior_layers(self, batch: Batch, training=None, branch_outputs=None) -> Layers:
    """[(mean, variance)] of q(z_l | every modality) for l = 1..L; `branch_outputs` (from
    `joint_branch_outputs`) stand in for the joint encoder's branches of the modalities they
    cover."""
    raise NotImplementedError

  def joint_branch_outputs(self, batch: Batch, names: Sequence[str]) -> Dict[str, tf.Tensor]:
    """What the joint encoder's branches make of the modalities `names` (inference mode), for
    `joint_posterior_layers(branch_outputs=...)`: iterative sampling works them out once for
    the modalities it holds fixed instead of in every round. Empty (nothing precomputed) for
    a model whose joint encoder has no branches."""
    return {}

  def decode(self, z, batch: Optional[Batch] = None, names: Optional[Sequence[str]] = None):
    """{name: p(name | z)} for the generated modalities (or those in `names`)."""
    raise NotImplementedError

  # --- inference API (defaults for one latent layer and an N(0, I) prior) -------------------
  @property
  def modality_names(self) -> Tuple[str, ...]:
    return tuple(m.name for m in self.modality_specs)

  @property
  def generated_modalities(self) -> Tuple[str, ...]:
    return self.modality_names

  @property
  def conditioning_modalities(self) -> Tuple[str, ...]:
    return ()

  def inference_problem(self, given: Tuple[str, ...]) -> Optional[str]:
    """Why z cannot be inferred from `given` (some of the model's modalities, sorted), or None:
    what a subclass overrides to say what it infers from. Here: from all of them only."""
    if set(given) != set(self.modality_names):
      return f"{self.name} infers z from all of {self.modality_names} only"
    return None

  def _problem(self, given: Tuple[str, ...]) -> Optional[str]:
    unknown = [g for g in given if g not in self.modality_names]
    if unknown or not given:
      return (
        f"{self.name}: given must name some of the modalities {self.modality_names}, got {given}"
      )
    return self.inference_problem(given)

  def can_infer(self, given: Sequence[str]) -> bool:
    """Whether z can be inferred from the modalities `given`."""
    return self._problem(_sorted_names(given)) is None

  def check_given(self, given: Sequence[str]) -> Tuple[str, ...]:
    """`given` sorted, or a ValueError saying why z cannot be inferred from it."""
    given = _sorted_names(given)
    problem = self._problem(given)
    if problem is not None:
      raise ValueError(problem)
    return given

  def inference_subsets(self) -> List[Tuple[str, ...]]:
    """Every non-empty set of modalities z can be inferred from, smallest first."""
    names = self.modality_names
    subsets = [c for r in range(1, len(names) + 1) for c in itertools.combinations(names, r)]
    return [tuple(sorted(s)) for s in subsets if self.can_infer(s)]

  def uses_iterative_sampling(self, given: Sequence[str]) -> bool:
    return False

  def posterior_layers(
    self, batch: Batch, given: Sequence[str], seed=(0, 0), num_steps=0
  ) -> Layers:
    self.check_given(given)
    return self.joint_posterior_layers(batch, training=False)

  def posterior(self, batch: Batch, given: Sequence[str], seed=(0, 0), num_steps=0):
    """(mean, variance) of the Gaussian over z_1 given the modalities `given`."""
    return self.posterior_layers(batch, given, seed, num_steps)[0]

  def generated_mean(
    self, batch: Batch, target: str, given: Sequence[str], seed=(0, 0), num_steps=0
  ) -> tf.Tensor:
    """The mean of p(target|z) for one draw z from the posterior given `given` (`batch` may
    hold only those): what figures, coherence and the attributes predicted from the image
    read off a model."""
    seed_posterior, seed_z = split_seed(seed, 2)
    mean, variance = self.posterior(batch, given, seed_posterior, num_steps)
    z = gaussian.sample(mean, variance, seed_z)
    return self.decode(z, batch, names=[target])[target].mean()

  def latent_draws(self, layers: Layers, n: int, seed) -> tf.Tensor:
    mean, variance = layers[0]
    return gaussian.sample_n(mean, variance, n, seed)

  def sample_prior_layers(self, n, seed) -> List[tf.Tensor]:
    return [tf.random.stateless_normal(tf.stack([n, self.latent_dim]), tf.cast(seed, tf.int64))]

  def sample_prior(self, n, seed) -> tf.Tensor:
    """n draws of z_1 from the prior."""
    return self.sample_prior_layers(n, seed)[0]

  def prior_log_density(self, zs: Sequence[tf.Tensor], batch: Optional[Batch] = None):
    return gaussian.log_density(zs[0])

  def describe_inference(self, given: Sequence[str], num_steps: int) -> str:
    return f"z ~ q(z|{','.join(self.check_given(given))})"

  # --- building and describing -------------------------------------------------------------
  def config(self) -> ModelConfig:
    """What run.json holds of this model: its registered name, options, modalities (in the
    data set's order), architecture and data set. A ValueError for a class nobody registered
    (jmvae_tf.register_model), which could not be built again from it."""
    name = registry.name_of(type(self))
    if name is None:
      raise ValueError(
        f"{type(self).__name__} is not a registered model: register it "
        "(jmvae_tf.register_model) to save, export or load it by its config"
      )
    return ModelConfig(
      name,
      self.options,
      self.data_modalities,
      self.architecture.name,
      self.dataset_name,
      self.architecture.options,
    )

  # --- incomplete examples (jmvae_tf.core.missing) -----------------------------------------
  def incomplete_problem(self) -> Optional[str]:
    """Why this model cannot train on examples that lack some of its modalities, or None where
    it can (`incomplete_loss_terms`): checked before training on data with gaps."""
    return (
      f"{type(self).__name__} trains on complete examples only; on data with missing "
      "modalities train jmvae_kl, which learns from whatever each example holds"
    )

  def learns_from(self, present: Dict[str, np.ndarray]) -> np.ndarray:
    """bool [N]: the examples (masks {modality: bool [N]}) that add to this model's objective:
    those holding any of its modalities (CVAE/CMMA: both of theirs)."""
    held = [np.asarray(present[n], bool) for n in self.modality_names if n in present]
    return np.logical_or.reduce(held)

  def incomplete_loss_terms(
    self, batch: Batch, present: Dict[str, tf.Tensor], seed, training=None
  ) -> Dict[str, tf.Tensor]:
    """Per-example terms of a batch whose examples may lack modalities (`present`: {each of the
    model's modalities: bool [B]}; an absent value is zeros), the total under "loss" a bound
    on log p(what each example holds) (0 for one that holds none), and under steps.WEIGHTS
    {term: weight [B]}: which examples each reported term is an average over."""
    raise ValueError(self.incomplete_problem())

  def dummy_batch(self, batch_size: int = 1) -> Batch:
    return {m.name: tf.zeros((batch_size,) + m.shape) for m in self.modality_specs}

  def initialize(self):
    """Creates every variable (before restoring a checkpoint or counting parameters)."""
    self.loss_terms(self.dummy_batch(), tf.constant([0, 0], tf.int64), training=False)
    return self
