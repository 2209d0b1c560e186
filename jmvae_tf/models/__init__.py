"""The objectives: one base model (with the inference API every consumer calls) and
one subclass per objective of the paper, each with its options dataclass beside it."""

from jmvae_tf.models.base import LOSS, ModelOptions, MultimodalVAE
from jmvae_tf.models.conditional import CMMA, CVAE, ConditionalModel, ConditionalOptions
from jmvae_tf.models.hierarchical import HierarchicalJMVAE, HierarchicalJMVAEOptions
from jmvae_tf.models.iterative import iterative_impute
from jmvae_tf.models.jmvae import JMVAE, JMVAEKL, JMVAEKLOptions
from jmvae_tf.models.jmvae_kl_gan import JMVAEKLGAN, JMVAEKLGANOptions

__all__ = [
  "LOSS",
  "ModelOptions",
  "MultimodalVAE",
  "JMVAE",
  "JMVAEKL",
  "JMVAEKLOptions",
  "JMVAEKLGAN",
  "JMVAEKLGANOptions",
  "HierarchicalJMVAE",
  "HierarchicalJMVAEOptions",
  "ConditionalModel",
  "ConditionalOptions",
  "CVAE",
  "CMMA",
  "iterative_impute",
]
