"""jmvae_tf/models/jmvae.py: JMVAE's loss is reconstruction plus the weighted KL term, JMVAE-kl's
adds its regulariser with the paper's weights, and their parameters are the paper's networks."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from model_batches import DECODERS, JOINT, SEED, build, dense, mlp, random_batch, trainable

from jmvae_tf import models
from jmvae_tf.core import gaussian, options
from jmvae_tf.core.modalities import Modality
from pipelines.mnist import mnist_modalities

tfd = tfp.distributions
MODS = mnist_modalities()


def test_jmvae_loss_is_reconstruction_plus_weighted_kl():
  model = build("jmvae")
  model.kl_weight.assign(0.25)
  t = model.loss_terms(random_batch(), SEED)
  np.testing.assert_allclose(
    t["loss"], t["nll_image"] + t["nll_label"] + 0.25 * t["kl_prior"], rtol=1e-5
  )
  mean, var = model.joint_posterior_layers(random_batch(), training=False)[0]
  np.testing.assert_allclose(t["kl_prior"], gaussian.kl_divergence(mean, var), rtol=1e-5)


@pytest.mark.parametrize("alpha, anneal, reduction", [(1.0, False, "sum"), (0.1, True, "mean")])
def test_jmvae_kl_regulariser(alpha, anneal, reduction):
  model = build("jmvae_kl", alpha=alpha, anneal_alpha=anneal, alpha_reduction=reduction)
  model.kl_weight.assign(0.5)
  batch = random_batch()
  t = model.loss_terms(batch, SEED)
  # the KL(q(z|x,w) || q(z|x)) term against TFP's KL between the encoders' Gaussians
  mj, vj = model.joint_posterior_layers(batch, training=False)[0]
  mx, vx = model.posterior(batch, ["image"])
  tfp_kl = tfd.kl_divergence(
    tfd.MultivariateNormalDiag(mj, tf.sqrt(vj)), tfd.MultivariateNormalDiag(mx, tf.sqrt(vx))
  )
  np.testing.assert_allclose(t["kl_joint_image"], tfp_kl, rtol=1e-4)
  reg = t["kl_joint_image"] + t["kl_joint_label"]
  if reduction == "mean":
    reg = reg / 2
  weight = alpha * (0.5 if anneal else 1.0)
  expected = t["nll_image"] + t["nll_label"] + 0.5 * t["kl_prior"] + weight * reg
  np.testing.assert_allclose(t["loss"], expected, rtol=1e-5)


def test_jmvae_kl_has_an_encoder_for_each_proper_subset_of_three_modalities():
  mods = MODS + (Modality("extra", "bernoulli", (5,), "vector"),)
  model = models.JMVAEKL(mods, options.JMVAEKLOptions(latent_dim=4)).initialize()
  assert sorted(model.subset_encoders) == sorted(
    ["image", "label", "extra", "image+label", "extra+image", "extra+label"]
  )


def test_parameter_counts_of_whole_models():
  unimodal = mlp(784) + mlp(10) + 4 * dense(512, 64)
  assert trainable(build("jmvae")) == JOINT + DECODERS
  assert trainable(build("jmvae_kl")) == JOINT + DECODERS + unimodal


# --- three modalities (issue 20) -------------------------------------------------------------

K3 = (
  Modality("digit", "bernoulli", (28, 28, 1), "image"),
  Modality("fashion", "bernoulli", (28, 28, 1), "image"),
  Modality("label", "categorical", (10,)),
)


def k3_batch(n=5, seed=0):
  rng = np.random.default_rng(seed)
  return {
    "digit": tf.constant((rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32)),
    "fashion": tf.constant((rng.random((n, 28, 28, 1)) < 0.5).astype(np.float32)),
    "label": tf.one_hot(rng.integers(0, 10, n), 10),
  }


@pytest.fixture(scope="module")
def k3_models():
  from jmvae_tf.models import config

  make = lambda m, **o: config.build_model(
    config.ModelConfig.make(m, K3, "mnist_mlp", "mnist_fashion", latent_dim=4, **o)
  )
  return {m: make(m) for m in ("jmvae", "jmvae_kl", "hierarchical_jmvae")}


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_jmvae_kl_alpha_terms_over_the_six_subsets_of_three(reduction):
  from jmvae_tf.models import config

  model = config.build_model(
    config.ModelConfig.make(
      "jmvae_kl",
      K3,
      "mnist_mlp",
      "mnist_fashion",
      latent_dim=4,
      alpha=0.3,
      alpha_reduction=reduction,
    )
  )
  model.kl_weight.assign(0.5)
  t = model.loss_terms(k3_batch(), SEED)
  subsets = ["digit", "fashion", "label", "digit+fashion", "digit+label", "fashion+label"]
  assert sorted(k for k in t if k.startswith("kl_joint_")) == sorted(
    f"kl_joint_{s}" for s in subsets
  )
  mj, vj = model.joint_posterior_layers(k3_batch(), training=False)[0]
  ms, vs = model.posterior(k3_batch(), ["fashion", "label"])
  np.testing.assert_allclose(
    t["kl_joint_fashion+label"], gaussian.kl_divergence(mj, vj, ms, vs), rtol=1e-4
  )
  reg = sum(t[f"kl_joint_{s}"] for s in subsets) / (6 if reduction == "mean" else 1)
  nll = t["nll_digit"] + t["nll_fashion"] + t["nll_label"]
  np.testing.assert_allclose(t["loss"], nll + 0.5 * t["kl_prior"] + 0.3 * reg, rtol=1e-5)


def test_every_joint_model_infers_z_from_every_non_empty_subset_of_three(k3_models):
  """JMVAE and hierarchical JMVAE by iterative sampling of whichever are missing (two of them
  given one modality), JMVAE-kl from its subset encoder; each a Gaussian per example that
  depends on the given modalities only."""
  batch = k3_batch()
  names = ("digit", "fashion", "label")
  for name, model in k3_models.items():
    assert len(model.inference_subsets()) == 7, name
    for given in model.inference_subsets():
      seen = {n: batch[n] for n in given}
      mean, variance = model.posterior(seen, given, seed=(1, 2), num_steps=3)
      assert mean.shape == (5, 4) and bool(tf.reduce_all(variance > 0)), (name, given)
      iterative = model.uses_iterative_sampling(given)
      assert iterative == (name != "jmvae_kl" and len(given) < 3), (name, given)
      other = {
        n: tf.roll(batch[n], 1, axis=0) if n == "label" else 1.0 - batch[n]
        for n in names
        if n not in given
      }
      mean2, _ = model.posterior({**seen, **other}, given, seed=(1, 2), num_steps=3)
      np.testing.assert_allclose(mean2.numpy(), mean.numpy(), rtol=1e-5, atol=1e-6)
    assert "digit,fashion from 0 by iterative sampling" in k3_models["jmvae"].describe_inference(
      ["label"], 5
    )


def branch_parameters(model):
  """{encoder: [parameters of each modality branch]} of a model's encoders."""
  out = {}
  for encoder in [model.joint_encoder, *getattr(model, "subset_encoders", {}).values()]:
    out[encoder.name] = [
      sum(int(np.prod(v.shape)) for v in b.trainable_variables) for b in encoder.branches
    ]
  return out


@pytest.mark.parametrize("k", [2, 3])
def test_encoder_parameters_against_the_papers_formulas(k, k3_models):
  """Section 3.5: with K modalities JMVAE-kl needs an encoder for every non-empty subset,
  2^(K-1) K modality networks of M parameters each; hierarchical JMVAE needs K + L - 1
  (its joint encoder's K branches and L - 1 networks up the hierarchy). Counted on the real
  models, with M each modality's own branch (the formula's M where they are equal)."""
  mods = MODS if k == 2 else K3
  kl = build("jmvae_kl") if k == 2 else k3_models["jmvae_kl"]
  hier = build("hierarchical_jmvae") if k == 2 else k3_models["hierarchical_jmvae"]
  per_modality = {
    m.name: sum(int(np.prod(v.shape)) for v in b.trainable_variables)
    for m, b in zip(sorted(mods, key=lambda m: m.name), kl.joint_encoder.branches)
  }
  branches = branch_parameters(kl)
  assert sum(len(b) for b in branches.values()) == 2 ** (k - 1) * k  # networks of M
  assert sum(map(sum, branches.values())) == 2 ** (k - 1) * sum(per_modality.values())
  layers = hier.num_layers
  upper = [e.body for e in hier.upper_encoders]
  assert len(hier.joint_encoder.branches) + len(upper) == k + layers - 1
