"""JMVAE (eq 5) and JMVAE-kl (eq 10)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Dict, List, Optional, Tuple

import tensorflow as tf

from jmvae_tf.core import gaussian
from jmvae_tf.core.modalities import subset_name
from jmvae_tf.models import iterative
from jmvae_tf.models.base import LOSS, Batch, Layers, MultimodalVAE


@dataclasses.dataclass
class Forward:
  """One pass of JMVAE's objective: what its loss is made of (per-example tensors)."""

  layers: Layers  # q(z_l | every modality), l = 1..L
  zs: List[tf.Tensor]  # one draw of each layer
  dists: Dict[str, object]  # p(m | z_1) for each generated modality m
  nll: Dict[str, tf.Tensor]  # -log p(m | z_1), by modality
  kl: Dict[str, tf.Tensor]  # the KL terms, weighted by kl_weight
  regulariser: Optional[tf.Tensor]  # weighted, added to the loss (JMVAE-kl's alpha terms)
  regulariser_terms: Dict[str, tf.Tensor]  # its unweighted terms


class JMVAE(MultimodalVAE):
  """p(z) prod_k p(x_k|z) with a joint encoder q(z|x_1..x_K).

  loss = sum_k -log p(x_k|z) + kl_weight * KL terms + regulariser, where the KL
  terms are KL(q(z|x..) || N(0,I)) here (hierarchical JMVAE: its chain, eq 9) and
  the regulariser is none here (JMVAE-kl: its alpha terms). From a subset of the
  modalities z is inferred by iterative sampling (eq 6) of the missing ones.
  """

  def __init__(self, modalities, options, architecture=None, name=None):
    super().__init__(modalities, options, architecture, name=name)
    self.joint_encoder = self.architecture.encoder(
      self.modality_specs, self.latent_dim, "joint_encoder"
    )
    self.decoders = {
      m.name: self.architecture.decoder(m, f"decoder_{m.name}", self.options.decoder_variance)
      for m in self.modality_specs
    }

  # --- the objective: what variants override -------------------------------------------------
  def loss_term_names(self):
    nll = tuple(f"nll_{m.name}" for m in self.modality_specs)
    return nll + self.kl_term_names() + self.regulariser_term_names()

  def kl_term_names(self) -> Tuple[str, ...]:
    return ("kl_prior",)

  def regulariser_term_names(self) -> Tuple[str, ...]:
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

  def forward(self, batch: Batch, seed, training=None) -> Forward:
    """The objective's parts for `batch`, z drawn with the stateless `seed`."""
    layers = self.joint_posterior_layers(batch, training=training)
    zs = self.sample_posterior(layers, seed)
    dists = self.decode(zs[0], training=training)
    nll = {name: -dist.log_prob(batch[name]) for name, dist in dists.items()}
    kl = self.kl_terms(layers, zs, training)
    regulariser, regulariser_terms = self.regulariser(batch, layers, training)
    return Forward(layers, zs, dists, nll, kl, regulariser, regulariser_terms)

  def total_loss(self, forward: Forward, nll: Optional[Dict[str, tf.Tensor]] = None):
    """sum of the likelihood terms (`nll`, default forward's) + kl_weight * KL + regulariser."""
    nll = forward.nll if nll is None else nll
    loss = tf.add_n(list(nll.values())) + self.kl_weight * tf.add_n(list(forward.kl.values()))
    return loss if forward.regulariser is None else loss + forward.regulariser

  def reported_terms(self, forward: Forward) -> Dict[str, tf.Tensor]:
    nll = {f"nll_{name}": value for name, value in forward.nll.items()}
    return {**nll, **forward.kl, **forward.regulariser_terms}

  def loss_terms(self, batch, seed, training=None):
    forward = self.forward(batch, seed, training)
    return {**self.reported_terms(forward), LOSS: self.total_loss(forward)}

  # --- networks ------------------------------------------------------------------------------
  def joint_posterior_layers(self, batch: Batch, training=None, branch_outputs=None) -> Layers:
    return [self.joint_encoder(batch, training=training, branch_outputs=branch_outputs)]

  def joint_branch_outputs(self, batch, names):
    return self.joint_encoder.branch_outputs(batch, names, training=False)

  def decode(self, z, batch=None, names=None, training=False):
    names = self.generated_modalities if names is None else names
    return {name: self.decoders[name](z, training=training) for name in names}

  # --- inference -----------------------------------------------------------------------------
  def _missing(self, given: Tuple[str, ...]) -> List[str]:
    return [m for m in self.modality_names if m not in given]

  def inference_problem(self, given):
    return None  # iterative sampling fills whichever are missing

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
      f"{','.join(self._missing(given))} from 0 by iterative sampling, K={num_steps}, "
      f"then z ~ q(z|{','.join(self.modality_names)})"
    )


class JMVAEKL(JMVAE):
  """JMVAE-kl: JMVAE plus encoders for every proper subset of the modalities, pulled
  towards the joint one by alpha * sum_s KL(q(z|all) || q(z|s)).

  For two modalities the subsets are the unimodal q(z|x) and q(z|w) of the paper;
  inference from a subset reads its encoder (no iterative sampling).
  """

  def __init__(self, modalities, options, architecture=None, name=None):
    if len(modalities) < 2:
      raise ValueError("JMVAE-kl needs at least two modalities")
    super().__init__(modalities, options, architecture, name=name)
    # Keyed "a+b" (the checkpoint's names of the encoders); a layer's name may not hold "+".
    self.subset_encoders = {
      subset_name(s): self.architecture.encoder(
        [m for m in self.modality_specs if m.name in s],
        self.latent_dim,
        f"encoder_{subset_name(s, '_and_')}",
      )
      for s in self.proper_subsets()
    }

  def proper_subsets(self) -> List[Tuple[str, ...]]:
    names = self.modality_names
    return [c for r in range(1, len(names)) for c in itertools.combinations(names, r)]

  def regulariser_term_names(self):
    return tuple(f"kl_joint_{subset_name(s)}" for s in self.proper_subsets())

  def regulariser(self, batch, layers, training=None):
    mean, variance = layers[0]
    terms = {}
    for key, encoder in self.subset_encoders.items():
      m_s, v_s = encoder(batch, training=training)
      terms[f"kl_joint_{key}"] = gaussian.kl_divergence(mean, variance, m_s, v_s)
    total = tf.add_n(list(terms.values()))
    if self.options.alpha_reduction == "mean":
      total = total / len(terms)
    weight = self.options.alpha * (self.kl_weight if self.options.anneal_alpha else 1.0)
    return weight * total, terms

  def inference_problem(self, given):
    return None  # an encoder for every subset

  def uses_iterative_sampling(self, given):
    self.check_given(given)
    return False

  def posterior_layers(self, batch, given, seed=(0, 0), num_steps=0):
    given = self.check_given(given)
    if set(given) == set(self.modality_names):
      return self.joint_posterior_layers(batch, training=False)
    return [self.subset_encoders[subset_name(given)](batch, training=False)]
