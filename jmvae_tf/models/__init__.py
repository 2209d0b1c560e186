"""The objectives: one base model and one subclass per objective of the paper."""

from jmvae_tf.models.base import LOSS, MultimodalVAE
from jmvae_tf.models.conditional import CMMA, CVAE, ConditionalModel
from jmvae_tf.models.hierarchical import HierarchicalJMVAE
from jmvae_tf.models.jmvae import JMVAE, JMVAEKL

__all__ = ["LOSS", "MultimodalVAE", "JMVAE", "JMVAEKL", "HierarchicalJMVAE", "ConditionalModel", "CVAE", "CMMA"]
