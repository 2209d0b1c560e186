"""jmvae_tf/models/hierarchical.py: hierarchical JMVAE's loss and its KL to the conditional
prior p(z1|z2) (eq 9), and its parameters (the hierarchy on top of JMVAE's networks)."""

import numpy as np
from model_batches import DECODERS, JOINT, SEED, build, dense, mlp, random_batch, trainable

from jmvae_tf.core import gaussian


def test_hierarchical_loss_and_kl_to_conditional_prior():
  model = build("hierarchical_jmvae")
  model.kl_weight.assign(1.0)
  batch = random_batch()
  t = model.loss_terms(batch, SEED)
  np.testing.assert_allclose(
    t["loss"], t["nll_image"] + t["nll_label"] + t["kl_z1"] + t["kl_z2"], rtol=1e-5
  )
  (m1, v1), (m2, v2) = model.joint_posterior_layers(batch)
  np.testing.assert_allclose(t["kl_z2"], gaussian.kl_divergence(m2, v2), rtol=1e-5)
  assert model.sample_prior(4, SEED).shape == (4, 64)


def test_parameter_count_of_the_whole_model():
  # hierarchy: h2 = D512R-D512R on the 1024 features, z2 heads, p(z1|z2)
  upper = dense(1024, 512) + dense(512, 512) + 2 * dense(512, 64) + mlp(64) + 2 * dense(512, 64)
  assert trainable(build("hierarchical_jmvae")) == JOINT + DECODERS + upper
