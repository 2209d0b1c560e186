"""JMVAE (eq 5) and JMVAE-kl (eq 10)."""

from __future__ import annotations

import itertools
from typing import Dict, Sequence

import tensorflow as tf
import tensorflow_probability as tfp

from jmvae_tf import gaussian
from jmvae_tf.models.base import LOSS, Batch, MultimodalVAE
from jmvae_tf.modalities import Modality
from jmvae_tf.networks import MNIST_MLP, Architecture


def subset_key(names: Sequence[str]) -> str:
  return "+".join(sorted(names))


class JMVAE(MultimodalVAE):
  """p(z) prod_k p(x_k|z) with a joint encoder q(z|x_1..x_K).

  loss = sum_k -log p(x_k|z) + kl_weight * KL(q(z|x..) || N(0,I)) + regulariser.
  """

  def __init__(self, modalities: Sequence[Modality], latent_dim: int = 64, seed: int = 0,
               architecture: Architecture = MNIST_MLP, name=None, **kwargs):
    terms = tuple(f"nll_{m.name}" for m in modalities) + ("kl_prior",) + self.extra_term_names(modalities)
    super().__init__(modalities, latent_dim, terms, seed, name=name, **kwargs)
    self.architecture = architecture
    self.joint_encoder = architecture.encoder(self.modality_specs, self.latent_dim, "joint_encoder")
    self.decoders = {m.name: architecture.decoder(m, f"decoder_{m.name}") for m in self.modality_specs}

  def extra_term_names(self, modalities) -> tuple:
    return ()

  def encode(self, batch: Batch, training=None):
    """(mean, variance) of q(z | all modalities)."""
    return self.joint_encoder(batch, training=training)

  def decode(self, z, training=None) -> Dict[str, "tfp.distributions.Distribution"]:
    return {name: dec(z, training=training) for name, dec in self.decoders.items()}

  def regulariser(self, batch, mean, variance, training) -> Dict[str, tf.Tensor]:
    """Extra per-example terms added to the loss (none for plain JMVAE)."""
    return {}

  def loss_terms(self, batch, seed, training=None):
    mean, variance = self.encode(batch, training=training)
    z = gaussian.sample(mean, variance, seed)
    terms = {f"nll_{name}": -dist.log_prob(batch[name]) for name, dist in self.decode(z, training).items()}
    terms["kl_prior"] = gaussian.kl_divergence(mean, variance)
    loss = tf.add_n([terms[f"nll_{n}"] for n in self.modality_names]) + self.kl_weight * terms["kl_prior"]
    extra = self.regulariser(batch, mean, variance, training)
    if extra:
      loss += extra.pop("weighted_regulariser")
      terms.update(extra)
    terms[LOSS] = loss
    return terms


class JMVAEKL(JMVAE):
  """JMVAE-kl: JMVAE plus encoders for every proper subset of the modalities, pulled
  towards the joint one by alpha * sum_s KL(q(z|all) || q(z|s)).

  For two modalities the subsets are the unimodal q(z|x) and q(z|w) of the paper.
  Options (paper's choice first): alpha=1 (arXiv/MultiVae: 0.1); the alpha terms
  are not warmed up (anneal_alpha=False; MultiVae: True); they are summed over the
  subsets (alpha_reduction="sum"; later Tars code: "mean").
  """

  def __init__(self, modalities, latent_dim=64, seed=0, architecture=MNIST_MLP, alpha: float = 1.0,
               anneal_alpha: bool = False, alpha_reduction: str = "sum", name=None):
    if alpha_reduction not in ("sum", "mean"):
      raise ValueError(f"alpha_reduction must be 'sum' or 'mean', got {alpha_reduction!r}")
    if len(modalities) < 2:
      raise ValueError("JMVAE-kl needs at least two modalities")
    super().__init__(modalities, latent_dim, seed, architecture, name=name)
    self.alpha = float(alpha)
    self.anneal_alpha = bool(anneal_alpha)
    self.alpha_reduction = alpha_reduction
    self.subset_encoders = {
        subset_key(s): architecture.encoder([m for m in self.modality_specs if m.name in s], self.latent_dim,
                                            f"encoder_{subset_key(s)}")
        for s in self.proper_subsets(self.modality_specs)}

  @staticmethod
  def proper_subsets(modalities):
    names = [m.name for m in modalities]
    return [c for r in range(1, len(names)) for c in itertools.combinations(names, r)]

  def extra_term_names(self, modalities):
    return tuple(f"kl_joint_{subset_key(s)}" for s in self.proper_subsets(modalities))

  def encode_subset(self, batch: Batch, names: Sequence[str], training=None):
    """(mean, variance) of q(z | the named modalities): joint or subset encoder."""
    if set(names) == set(self.modality_names):
      return self.encode(batch, training)
    return self.subset_encoders[subset_key(names)](batch, training=training)

  def regulariser(self, batch, mean, variance, training):
    terms = {}
    for key, encoder in self.subset_encoders.items():
      m_s, v_s = encoder(batch, training=training)
      terms[f"kl_joint_{key}"] = gaussian.kl_divergence(mean, variance, m_s, v_s)
    total = tf.add_n(list(terms.values()))
    if self.alpha_reduction == "mean":
      total = total / len(terms)
    weight = self.alpha * (self.kl_weight if self.anneal_alpha else 1.0)
    terms["weighted_regulariser"] = weight * total
    return terms
