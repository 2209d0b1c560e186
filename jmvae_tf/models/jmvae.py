"""JMVAE (eq 5) and JMVAE-kl (eq 10), and what each trains on an example that lacks some of
its modalities (docs/INCOMPLETE.md): JMVAE-kl the bound of what the example holds through the
encoder of that subset; JMVAE (and hierarchical JMVAE) through its joint encoder, the missing
modalities imputed by a round of its own iterative sampling (eq 6)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Dict, List, Optional, Tuple

import tensorflow as tf

from jmvae_tf.core import gaussian
from jmvae_tf.core.missing import pattern_weights, where_held
from jmvae_tf.core.modalities import subset_name
from jmvae_tf.core.sampling import split_seed
from jmvae_tf.models import iterative
from jmvae_tf.models.base import LOSS, Batch, Layers, MultimodalVAE
from jmvae_tf.models.steps import WEIGHTS

# Rounds of eq 6 that fill an incomplete training example's missing modalities (JMVAE).
INCOMPLETE_IMPUTE_ROUNDS = 1


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

  def regulariser(self, batch: Batch, layers: Layers, training=None, subsets=None):
    """(weighted per-example total added to the loss, its unweighted terms); none here.
    `subsets`: what JMVAE-kl's subset encoders made of the batch, where already worked out."""
    return None, {}

  def forward(self, batch: Batch, seed, training=None, subsets=None) -> Forward:
    """The objective's parts for `batch`, z drawn with the stateless `seed`."""
    layers = self.joint_posterior_layers(batch, training=training)
    zs = self.sample_posterior(layers, seed)
    dists = self.decode(zs[0], training=training)
    nll = {name: -dist.log_prob(batch[name]) for name, dist in dists.items()}
    kl = self.kl_terms(layers, zs, training)
    if subsets is None:
      regulariser, regulariser_terms = self.regulariser(batch, layers, training)
    else:
      regulariser, regulariser_terms = self.regulariser(batch, layers, training, subsets)
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

  # --- incomplete examples -------------------------------------------------------------------
  def incomplete_problem(self):
    return None

  def incomplete_loss_terms(self, batch, present, seed, training=None):
    """An example lacking modalities M: they are imputed, x^_M ~ eq 6 (INCOMPLETE_IMPUTE_ROUNDS
    rounds from 0, no gradient through them), and its bound is that of what it holds, H:
    -sum_{k in H} log p(x_k|z) + KL terms, z ~ q(z|x_H, x^_M). A bound on log p(x_H) for any
    q, and x^_M is a function of x_H (and noise): q(z|x_H, x^_M) is an encoder of x_H, the one
    inference from H uses. The missing modalities' decoders get no gradient from it."""
    impute_seed, seed = split_seed(seed, 2)
    filled = iterative.impute_absent(self, batch, present, INCOMPLETE_IMPUTE_ROUNDS, impute_seed)
    forward = self.forward(filled, seed, training)
    held_any = tf.reduce_any(tf.stack(list(present.values())), axis=0)
    nll = {name: where_held(present[name], value) for name, value in forward.nll.items()}
    kl = {name: where_held(held_any, value) for name, value in forward.kl.items()}
    weights = {f"nll_{name}": tf.cast(present[name], tf.float32) for name in nll}
    any_weight = tf.cast(held_any, tf.float32)
    weights.update({name: any_weight for name in kl})
    terms = {f"nll_{name}": value for name, value in nll.items()}
    terms.update(kl)
    loss = self._weighted(where_held(held_any, self.total_loss(forward, nll)), present)
    return {**terms, LOSS: loss, WEIGHTS: {**weights, LOSS: any_weight}}

  def _weighted(self, loss, present):
    """`loss` [B] as `incomplete_weighting` weighs it (docs/INCOMPLETE.md)."""
    if self.options.incomplete_weighting == "pattern":
      return loss * pattern_weights(present, self.modality_names)
    return loss

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

  def regulariser(self, batch, layers, training=None, subsets=None):
    mean, variance = layers[0]
    terms = {}
    for key, encoder in self.subset_encoders.items():
      m_s, v_s = encoder(batch, training=training) if subsets is None else subsets[key]
      terms[f"kl_joint_{key}"] = gaussian.kl_divergence(mean, variance, m_s, v_s)
    return self._alpha_weighted(terms), terms

  def _alpha_weighted(self, terms):
    """alpha * (the sum, or mean, of the KL terms `terms`)."""
    total = tf.add_n(list(terms.values()))
    if self.options.alpha_reduction == "mean":
      total = total / len(terms)
    weight = self.options.alpha * (self.kl_weight if self.options.anneal_alpha else 1.0)
    return weight * total

  # --- incomplete examples -------------------------------------------------------------------
  def incomplete_loss_terms(self, batch, present, seed, training=None):
    """Each example's bound of what it holds, H (docs/INCOMPLETE.md): eq 10 where H is every
    modality; otherwise the JMVAE-kl objective of the modalities H with q(z|x_H) as their joint
    encoder: -sum_{k in H} log p(x_k|z) + KL(q(z|x_H)||p(z)) + alpha * (the KL(q(z|x_H)||q(z|x_s))
    of every proper subset s of H, none for one modality), z ~ q(z|x_H); 0 for an example that
    holds none. Every network runs on the whole batch once per subset (static shapes; what an
    example lacks is zeros) and tf.where keeps each example's own terms, so an example lacking
    a modality sends no gradient into its decoder, nor into an encoder that reads it."""
    subsets = self.proper_subsets()
    seeds = split_seed(seed, 1 + len(subsets))
    posteriors = {
      key: encoder(batch, training=training) for key, encoder in self.subset_encoders.items()
    }
    forward = self.forward(batch, seeds[0], training, subsets=posteriors)
    names = self.modality_names
    complete = tf.reduce_all(tf.stack([present[n] for n in names]), axis=0)
    # Each example's pattern: which subset is exactly what it holds.
    holds = {
      s: tf.reduce_all(tf.stack([present[n] if n in s else ~present[n] for n in names]), axis=0)
      for s in subsets
    }
    loss = where_held(complete, self.total_loss(forward))
    nll = {n: where_held(complete, forward.nll[n]) for n in names}
    kl_prior = where_held(complete, forward.kl["kl_prior"])
    regulariser = {k: where_held(complete, v) for k, v in forward.regulariser_terms.items()}
    reg_weight = {k: tf.cast(complete, tf.float32) for k in regulariser}
    for s, s_seed in zip(subsets, seeds[1:]):
      mean, variance = posteriors[subset_name(s)]
      dists = self.decode(gaussian.sample(mean, variance, s_seed), names=list(s), training=training)
      s_nll = {n: -dists[n].log_prob(batch[n]) for n in s}
      s_kl = gaussian.kl_divergence(mean, variance)
      inner = {
        f"kl_joint_{subset_name(t)}": gaussian.kl_divergence(
          mean, variance, *posteriors[subset_name(t)]
        )
        for t in subsets
        if set(t) < set(s)
      }
      bound = tf.add_n(list(s_nll.values())) + self.kl_weight * s_kl
      if inner:
        bound += self._alpha_weighted(inner)
      held = holds[s]
      loss += where_held(held, bound)
      kl_prior += where_held(held, s_kl)
      for n, value in s_nll.items():
        nll[n] += where_held(held, value)
      for k, value in inner.items():
        regulariser[k] += where_held(held, value)
        reg_weight[k] += tf.cast(held, tf.float32)
    held_any = tf.cast(tf.reduce_any(tf.stack([present[n] for n in names]), axis=0), tf.float32)
    loss = self._weighted(loss, present)
    terms = {f"nll_{n}": value for n, value in nll.items()}
    weights = {f"nll_{n}": tf.cast(present[n], tf.float32) for n in names}
    terms.update(kl_prior=kl_prior, **regulariser)
    weights.update(kl_prior=held_any, **reg_weight)
    return {**terms, LOSS: loss, WEIGHTS: {**weights, LOSS: held_any}}

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
