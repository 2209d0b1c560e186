"""The objectives by name, once: each with its title, its options and its class. Importable
without TensorFlow (the runners define their flags from it, so a bad flag is reported before
TensorFlow starts); `model_class` imports the class when it is wanted.

Adding a model: one entry here, in the order the paper's tables list the rows.
"""

from __future__ import annotations

import dataclasses
import importlib

from jmvae_tf import options


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  name: str  # --model, run.json's "model"
  title: str  # tables and figures
  options: type  # its options dataclass (jmvae_tf/options.py)
  class_path: str  # "module:Class"


MODELS = {
  e.name: e
  for e in (
    ModelEntry("cvae", "CVAE", options.ConditionalOptions, "jmvae_tf.models.conditional:CVAE"),
    ModelEntry("cmma", "CMMA", options.ConditionalOptions, "jmvae_tf.models.conditional:CMMA"),
    ModelEntry("jmvae", "JMVAE", options.ModelOptions, "jmvae_tf.models.jmvae:JMVAE"),
    ModelEntry("jmvae_kl", "JMVAE-kl", options.JMVAEKLOptions, "jmvae_tf.models.jmvae:JMVAEKL"),
    ModelEntry(
      "hierarchical_jmvae",
      "Hierarchical JMVAE",
      options.HierarchicalJMVAEOptions,
      "jmvae_tf.models.hierarchical:HierarchicalJMVAE",
    ),
    ModelEntry(
      "jmvae_kl_gan",
      "JMVAE-kl + VAE-GAN",
      options.JMVAEKLGANOptions,
      "jmvae_tf.models.jmvae_kl_gan:JMVAEKLGAN",
    ),
  )
}
MODEL_NAMES = tuple(MODELS)


def entry(name: str) -> ModelEntry:
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; choose from {list(MODELS)}")
  return MODELS[name]


def title(name: str) -> str:
  """The model's title in tables and figures (the name itself for one not registered)."""
  return MODELS[name].title if name in MODELS else name


def model_class(name: str) -> type:
  module, cls = entry(name).class_path.split(":")
  return getattr(importlib.import_module(module), cls)
