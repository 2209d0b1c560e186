"""The objectives: one base model (with the inference API every consumer calls) and one
subclass per objective of the paper; their options are in `jmvae_tf.options`, their names in
`jmvae_tf.registry`."""

from jmvae_tf.models.base import LOSS, MultimodalVAE
from jmvae_tf.models.conditional import CMMA, CVAE, ConditionalModel
from jmvae_tf.models.hierarchical import HierarchicalJMVAE
from jmvae_tf.models.iterative import iterative_impute
from jmvae_tf.models.jmvae import JMVAE, JMVAEKL
from jmvae_tf.models.jmvae_kl_gan import JMVAEKLGAN

__all__ = [
  "LOSS",
  "MultimodalVAE",
  "JMVAE",
  "JMVAEKL",
  "JMVAEKLGAN",
  "HierarchicalJMVAE",
  "ConditionalModel",
  "CVAE",
  "CMMA",
  "iterative_impute",
]
