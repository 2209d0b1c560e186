"""The objectives by name, once: each with its title, its options and its class. Importable
without TensorFlow (the runners define their flags from it, so a bad flag is reported before
TensorFlow starts); `model_class` imports the class when it is wanted.

The project's models are entries here, in the order the paper's tables list the rows; a
plug-in adds its own with `register_model` (run.json then records the plug-in's module).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Optional, Tuple, Union

from jmvae_tf.core import options, plugins


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  name: str  # --model, run.json's "model"
  title: str  # tables and figures
  options: type  # its options dataclass (a jmvae_tf.core.options.ModelOptions)
  model_class: Union[str, type]  # the class, or "module:Class" (imported when asked for)


MODELS = plugins.Registry(
  "model",
  {
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
  },
)


def register_model(
  name: str, title: str, options_class: type, model_class, replace: bool = False
) -> ModelEntry:
  """Adds an objective: `model_class` a MultimodalVAE subclass (or "module:Class") taking
  (modalities, options, architecture), configured by `options_class` (a ModelOptions
  dataclass, whose fields become runners.train's flags). Returns its entry."""
  if not (isinstance(options_class, type) and issubclass(options_class, options.ModelOptions)):
    raise TypeError(f"{name}: options_class must be a ModelOptions dataclass, got {options_class}")
  entry_ = ModelEntry(name, title, options_class, model_class)
  return MODELS.register(name, entry_, plugins.calling_module(), replace=replace)


def model_names() -> Tuple[str, ...]:
  """Every registered model, the project's first (in the paper's row order)."""
  return MODELS.names()


def entry(name: str) -> ModelEntry:
  return MODELS.get(name)


def title(name: str) -> str:
  """The model's title in tables and figures (the name itself for one not registered)."""
  return MODELS.get(name).title if name in MODELS else name


def model_class(name: str) -> type:
  cls = entry(name).model_class
  if isinstance(cls, str):
    module, attribute = cls.split(":")
    cls = getattr(importlib.import_module(module), attribute)
  return cls


def name_of(cls: type) -> Optional[str]:
  """The registered name of the model class `cls` (None where it has none)."""
  for name in model_names():
    registered = entry(name).model_class
    if registered is cls or registered == f"{cls.__module__}:{cls.__qualname__}":
      return name
  return None
