"""The objectives: one base model (`MultimodalVAE`, with the inference API every consumer
calls) and one subclass per objective of the paper; their options are in
`jmvae_tf.core.options`, their names in `jmvae_tf.models.registry`, a model's config
(run.json) in `jmvae_tf.models.config`.

The classes are imported when first used, so `jmvae_tf.models.registry` stays importable
without TensorFlow (the runners define their flags from it before TensorFlow starts).
"""

import importlib

_HOMES = {
  "LOSS": "base",
  "MultimodalVAE": "base",
  "JMVAE": "jmvae",
  "JMVAEKL": "jmvae",
  "JMVAEKLGAN": "jmvae_kl_gan",
  "HierarchicalJMVAE": "hierarchical",
  "ConditionalModel": "conditional",
  "CVAE": "conditional",
  "CMMA": "conditional",
  "iterative_impute": "iterative",
}
__all__ = list(_HOMES)


def __getattr__(name):
  if name not in _HOMES:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


def __dir__():
  return sorted(list(globals()) + __all__)
