"""jmvae_tf/models/conditional.py: CVAE's and CMMA's loss in each direction, their KL against
TFP's, CVAE's N(0, I) prior and CMMA's prior of the condition alone."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from model_batches import SEED, build, random_batch

tfd = tfp.distributions


@pytest.mark.parametrize("name", ["cvae", "cmma"])
@pytest.mark.parametrize("target, condition", [("image", "label"), ("label", "image")])
def test_conditional_models(name, target, condition):
  model = build(name, target=target, condition=condition)
  batch = random_batch()
  t = model.loss_terms(batch, SEED)
  assert set(t) == {f"nll_{target}", "kl_prior", "loss"}
  mean, var = model.joint_posterior_layers(batch, training=False)[0]
  pm, pv = model.prior(batch)
  tfp_kl = tfd.kl_divergence(
    tfd.MultivariateNormalDiag(mean, tf.sqrt(var)), tfd.MultivariateNormalDiag(pm, tf.sqrt(pv))
  )
  np.testing.assert_allclose(t["kl_prior"], tfp_kl, rtol=1e-4)
  if name == "cvae":
    np.testing.assert_array_equal(pm, 0.0)
  else:  # CMMA's prior depends on the condition only
    other = dict(batch, **{target: tf.zeros_like(batch[target])})
    np.testing.assert_allclose(model.prior(other)[0], pm)


@pytest.mark.parametrize("name", ["cvae", "cmma"])
def test_loss_weighs_the_kl_term_and_inference_needs_the_condition(name):
  """The loss is nll + kl_weight * KL; z is inferred from the condition (its prior) or from both
  (q(z|x,w)), never without the condition, and there is no prior without one."""
  model = build(name, latent_dim=4)  # image | label
  model.kl_weight.assign(0.3)
  batch = random_batch()
  t = model.loss_terms(batch, SEED)
  np.testing.assert_allclose(t["loss"], t["nll_image"] + 0.3 * t["kl_prior"], rtol=1e-5)
  assert model.inference_subsets() == [("label",), ("image", "label")]
  with pytest.raises(ValueError, match="cannot infer z from image without label"):
    model.check_given(["image"])
  prior_mean, prior_variance = model.prior(batch)
  mean, variance = model.posterior(batch, ["label"])
  np.testing.assert_allclose(mean, prior_mean)
  np.testing.assert_allclose(variance, prior_variance)
  with pytest.raises(ValueError, match="prior goes with its condition"):
    model.sample_prior(2, SEED)
