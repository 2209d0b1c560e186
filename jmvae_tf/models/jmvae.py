"""JMVAE (eq 5) and JMVAE-kl (eq 10)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Dict, List, Sequence, Tuple

import tensorflow as tf

from jmvae_tf import gaussian
from jmvae_tf.modalities import Modality
from jmvae_tf.models import iterative
from jmvae_tf.models.base import LOSS, Batch, Layers, ModelOptions, MultimodalVAE
from jmvae_tf.networks import MNIST_MLP, Architecture


def subset_key(names: Sequence[str]) -> str:
  return "+".join(sorted(names))


class JMVAE(MultimodalVAE):
  """p(z) prod_k p(x_k|z) with a joint encoder q(z|x_1..x_K).

  loss = sum_k -log p(x_k|z) + kl_weight * KL terms + regulariser, where the KL
  terms are KL(q(z|x..) || N(0,I)) here (hierarchical JMVAE: its chain, eq 9) and
  the regulariser is none here (JMVAE-kl: its alpha terms). From a subset of the
  modalities z is inferred by iterative sampling (eq 6) of the one missing modality.
  """

  options_class = ModelOptions

  def __init__(
    self,
    modalities: Sequence[Modality],
    latent_dim: int = 64,
    seed: int = 0,
    architecture: Architecture = MNIST_MLP,
    name=None,
  ):
    terms = (
      tuple(f"nll_{m.name}" for m in modalities)
      + self.kl_term_names()
      + self.regulariser_term_names(modalities)
    )
    super().__init__(modalities, latent_dim, terms, seed, name=name)
    self.architecture = architecture
    self.joint_encoder = architecture.encoder(self.modality_specs, self.latent_dim, "joint_encoder")
    self.decoders = {
      m.name: architecture.decoder(m, f"decoder_{m.name}") for m in self.modality_specs
    }

  # --- the objective: what variants override -------------------------------------------------
  def kl_term_names(self) -> Tuple[str, ...]:
    return ("kl_prior",)

  def regulariser_term_names(self, modalities) -> Tuple[str, ...]:
    return ()

  def sample_posterior(self, layers: Layers, seed) -> List[tf.Tensor]:
    """One draw of each latent layer (training's single-sample estimate)."""
    mean, variance = layers[0]
    return [gaussian.sample(mean, variance, seed)]

  def kl_terms(self, layers: Layers, zs: List[tf.Tensor], training=None) -> Dict[str, tf.Tensor]:
    """Per-example KL terms, all weighted by kl_weight (warm-up)."""
    mean, variance = layers[0]
    return {"kl_prior": gaussian.kl_divergence(mean, variance)}

  def regulariser(self, batch: Batch, layers: Layers, training=None):
    """(weighted per-example total added to the loss, its unweighted terms); none here."""
    return None, {}

  def loss_terms(self, batch, seed, training=None):
    layers = self.joint_posterior_layers(batch, training=training)
    zs = self.sample_posterior(layers, seed)
    nll = {
      f"nll_{name}": -dist.log_prob(batch[name])
      for name, dist in self.decode(zs[0], training=training).items()
    }
    kl = self.kl_terms(layers, zs, training)
    loss = tf.add_n(list(nll.values())) + self.kl_weight * tf.add_n(list(kl.values()))
    regulariser, reg_terms = self.regulariser(batch, layers, training)
    if regulariser is not None:
      loss += regulariser
    return {**nll, **kl, **reg_terms, LOSS: loss}

  # --- networks ------------------------------------------------------------------------------
  def joint_posterior_layers(self, batch: Batch, training=None) -> Layers:
    return [self.joint_encoder(batch, training=training)]

  def decode(self, z, batch=None, names=None, training=False):
    names = self.generated_modalities if names is None else names
    return {name: self.decoders[name](z, training=training) for name in names}

  # --- inference -----------------------------------------------------------------------------
  def _missing(self, given: Tuple[str, ...]) -> str:
    missing = [m for m in self.modality_names if m not in given]
    if len(missing) != 1:
      raise ValueError(f"iterative sampling fills one missing modality; {missing} are missing")
    return missing[0]

  def uses_iterative_sampling(self, given):
    return set(self.check_given(given)) != set(self.modality_names)

  def posterior_layers(self, batch, given, seed=(0, 0), num_steps=0):
    given = self.check_given(given)
    if set(given) == set(self.modality_names):
      return self.joint_posterior_layers(batch, training=False)
    imputed = iterative.iterative_impute(self, batch, self._missing(given), num_steps, seed)
    return self.joint_posterior_layers(imputed, training=False)

  def describe_inference(self, given, num_steps):
    given = self.check_given(given)
    if not self.uses_iterative_sampling(given):
      return f"z ~ q(z|{','.join(given)})"
    return (
      f"{self._missing(given)} from 0 by iterative sampling, K={num_steps}, "
      f"then z ~ q(z|{','.join(self.modality_names)})"
    )


@dataclasses.dataclass(frozen=True)
class JMVAEKLOptions(ModelOptions):
  """JMVAE-kl's options; the paper's choices are the defaults."""

  alpha: float = 1.0  # arXiv / MultiVae: 0.1
  anneal_alpha: bool = False  # MultiVae warms the alpha terms up too
  alpha_reduction: str = "sum"  # later Tars code: "mean"

  def __post_init__(self):
    super().__post_init__()
    if self.alpha < 0:
      raise ValueError(f"alpha must be >= 0, got {self.alpha}")
    if self.alpha_reduction not in ("sum", "mean"):
      raise ValueError(f"alpha_reduction must be 'sum' or 'mean', got {self.alpha_reduction!r}")


class JMVAEKL(JMVAE):
  """JMVAE-kl: JMVAE plus encoders for every proper subset of the modalities, pulled
  towards the joint one by alpha * sum_s KL(q(z|all) || q(z|s)).

  For two modalities the subsets are the unimodal q(z|x) and q(z|w) of the paper;
  inference from a subset reads its encoder (no iterative sampling).
  """

  options_class = JMVAEKLOptions

  def __init__(
    self,
    modalities,
    latent_dim=64,
    seed=0,
    architecture=MNIST_MLP,
    alpha: float = 1.0,
    anneal_alpha: bool = False,
    alpha_reduction: str = "sum",
    name=None,
  ):
    JMVAEKLOptions(latent_dim, seed, alpha, anneal_alpha, alpha_reduction)  # validates
    if len(modalities) < 2:
      raise ValueError("JMVAE-kl needs at least two modalities")
    super().__init__(modalities, latent_dim, seed, architecture, name=name)
    self.alpha = float(alpha)
    self.anneal_alpha = bool(anneal_alpha)
    self.alpha_reduction = alpha_reduction
    self.subset_encoders = {
      subset_key(s): architecture.encoder(
        [m for m in self.modality_specs if m.name in s], self.latent_dim, f"encoder_{subset_key(s)}"
      )
      for s in self.proper_subsets(self.modality_specs)
    }

  @staticmethod
  def proper_subsets(modalities):
    names = [m.name for m in modalities]
    return [c for r in range(1, len(names)) for c in itertools.combinations(names, r)]

  def regulariser_term_names(self, modalities):
    return tuple(f"kl_joint_{subset_key(s)}" for s in self.proper_subsets(modalities))

  def regulariser(self, batch, layers, training=None):
    mean, variance = layers[0]
    terms = {}
    for key, encoder in self.subset_encoders.items():
      m_s, v_s = encoder(batch, training=training)
      terms[f"kl_joint_{key}"] = gaussian.kl_divergence(mean, variance, m_s, v_s)
    total = tf.add_n(list(terms.values()))
    if self.alpha_reduction == "mean":
      total = total / len(terms)
    weight = self.alpha * (self.kl_weight if self.anneal_alpha else 1.0)
    return weight * total, terms

  def uses_iterative_sampling(self, given):
    self.check_given(given)
    return False

  def posterior_layers(self, batch, given, seed=(0, 0), num_steps=0):
    given = self.check_given(given)
    if set(given) == set(self.modality_names):
      return self.joint_posterior_layers(batch, training=False)
    return [self.subset_encoders[subset_key(given)](batch, training=False)]
