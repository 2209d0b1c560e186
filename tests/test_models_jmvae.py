"""jmvae_tf/models/jmvae.py: JMVAE's loss is reconstruction plus the weighted KL term, JMVAE-kl's
adds its regulariser with the paper's weights, and their parameters are the paper's networks."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from model_batches import DECODERS, JOINT, SEED, build, dense, mlp, random_batch, trainable

from jmvae_tf import gaussian, models, options
from jmvae_tf.modalities import Modality
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
  mods = MODS + (Modality("extra", "bernoulli", (5,)),)
  model = models.JMVAEKL(mods, options.JMVAEKLOptions(latent_dim=4)).initialize()
  assert sorted(model.subset_encoders) == sorted(
    ["image", "label", "extra", "image+label", "extra+image", "extra+label"]
  )


def test_parameter_counts_of_whole_models():
  unimodal = mlp(784) + mlp(10) + 4 * dense(512, 64)
  assert trainable(build("jmvae")) == JOINT + DECODERS
  assert trainable(build("jmvae_kl")) == JOINT + DECODERS + unimodal
