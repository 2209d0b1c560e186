"""The model's config, and the model built from it.

`ModelConfig` says which objective to build (a name of `jmvae_tf.models.registry`), on which data
set's modalities and networks, with the options that objective uses (its options dataclass in
`jmvae_tf.core.options`). It is written into the model directory as `run.json` (flat: model,
dataset, architecture, modalities, then the options) so evaluation and export can rebuild the
model and a restart can tell a checkpoint of another model; where a name in it was registered
by a plug-in, "plugins" lists the plug-in's module, which reading run.json imports first. How a
model is trained is `jmvae_tf.core.options.TrainConfig`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Dict, List, Optional, Sequence, Tuple

import tf_keras as keras

from jmvae_tf.core import likelihoods, plugins
from jmvae_tf.core.data import DataSet
from jmvae_tf.core.modalities import IMAGE, VECTOR, Modality
from jmvae_tf.core.options import ModelOptions
from jmvae_tf.models import registry
from jmvae_tf.networks import architecture

# Fields that a run.json written before they existed lacks, with the value those runs had.
ADDED_LATER = {
  "dataset": "mnist",
  "architecture": "mnist_mlp",
  "decoder_variance": 1.0,
  "incomplete_weighting": "example",
}
PLUGINS = "plugins"  # run.json's key of the plug-in modules its names need
ARCHITECTURE_OPTIONS = "architecture_options"


def legacy_family(shape) -> str:
  """The family of a modality of a run.json written before modalities had families: what the
  code that wrote it built for it (convolutions and pictures for [height, width, channels], an
  MLP for any other shape). Only such files are read so; a modality today says its family."""
  return IMAGE if len(shape) == 3 else VECTOR


def option_names(model: str) -> Tuple[str, ...]:
  """The options `model` is configured by (its options dataclass's fields)."""
  return registry.entry(model).options.field_names()


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """An objective, its options, and the data it reads. Build one with `make`."""

  model: str
  options: ModelOptions
  modalities: Tuple[Modality, ...]
  architecture: str
  dataset: str
  # The architecture's options ("key=value", canonical, sorted): those of a builder such as
  # "generic" (jmvae_tf/networks/generic.py); run.json holds them where there are any.
  architecture_options: Tuple[str, ...] = ()

  def __post_init__(self):
    options_class = registry.entry(self.model).options
    if not isinstance(self.options, options_class):
      raise ValueError(
        f"{self.model} takes {options_class.__name__}, got {type(self.options).__name__}"
      )
    built = architecture.get_architecture(self.architecture, self.architecture_options)
    object.__setattr__(self, "architecture_options", tuple(built.options))
    object.__setattr__(self, "modalities", tuple(self.modalities))
    fixed = any(m.likelihood.has_fixed_variance for m in self.modalities)
    if self.options.decoder_variance != likelihoods.FIXED_VARIANCE and not fixed:
      raise ValueError(
        f"decoder_variance={self.options.decoder_variance} has no effect on {self.dataset}: "
        f"none of its modalities has a fixed-variance Gaussian likelihood"
      )

  @classmethod
  def make(
    cls,
    model: str,
    modalities: Sequence[Modality],
    architecture: str,
    dataset: str,
    architecture_options=(),
    **options,
  ) -> "ModelConfig":
    """`model` with `options` (only those it uses: another is a ValueError naming it), the
    defaults that depend on the modalities filled in (ModelOptions.bind); `architecture`
    built with `architecture_options` ({key: value} or "key=value" items)."""
    unknown = sorted(set(options) - set(option_names(model)))
    if unknown:
      raise ValueError(f"{model} has no option {', '.join(unknown)}; it has {option_names(model)}")
    modalities = tuple(modalities)
    bound = registry.entry(model).options(**options).bind([m.name for m in modalities])
    return cls(model, bound, modalities, architecture, dataset, architecture_options)

  @property
  def modality_names(self) -> Tuple[str, ...]:
    return tuple(m.name for m in self.modalities)

  @property
  def latent_dim(self) -> int:
    return self.options.latent_dim

  @property
  def seed(self) -> int:
    return self.options.seed

  def as_dict(self) -> Dict:
    """Flat: what run.json holds and what a resume compares."""
    d = {
      "model": self.model,
      "dataset": self.dataset,
      "architecture": self.architecture,
      "modalities": [m.to_dict() for m in self.modalities],
      **dataclasses.asdict(self.options),
    }
    if self.architecture_options:  # absent where there are none: run.json as it always was
      d[ARCHITECTURE_OPTIONS] = list(self.architecture_options)
    return d

  def plugins(self) -> Dict[str, List[str]]:
    """{plug-in module: the names it registered that this config uses} (empty for a config
    of the project's own models, networks, likelihoods and data sets)."""
    families = [m.family for m in self.modalities]
    return plugins.modules_for(
      {
        "model": [self.model],
        "architecture": [self.architecture],
        "data set": [self.dataset],
        "likelihood kind": [m.kind for m in self.modalities],
        "network family": families,
        "family networks": families,
      }
    )

  def to_json(self) -> str:
    """run.json: as_dict, and the plug-in modules its names need (where there are any)."""
    d = self.as_dict()
    needed = self.plugins()
    if needed:
      d[PLUGINS] = needed
    return json.dumps(d, indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> "ModelConfig":
    """Reads run.json, also one written before options moved beside the models (it held
    every model's options: only those of its model are kept) or before a field of
    ADDED_LATER existed (the value those runs had). Any other field missing, of the wrong
    type or out of range is a ValueError naming it: nothing is filled in with a default
    that the run may not have had."""
    d = json.loads(text)
    if not isinstance(d, dict):
      raise ValueError(f"expected a JSON object, got {type(d).__name__}")
    needed = d.get(PLUGINS, {})
    if not isinstance(needed, dict) or not all(isinstance(v, list) for v in needed.values()):
      raise ValueError(f"{PLUGINS} must map module names to lists, got {needed!r}")
    plugins.import_plugins(needed, "run.json", needed)  # registers what its names need
    if "model" not in d:
      raise ValueError("it lacks 'model'")
    names = option_names(d["model"])
    # Any model's options are known (run.json once held them all); anything else is a typo.
    known = {"model", "dataset", "architecture", "modalities", PLUGINS, ARCHITECTURE_OPTIONS}
    known |= {n for model in registry.model_names() for n in option_names(model)}
    unknown = sorted(set(d) - known)
    if unknown:
      raise ValueError(f"unknown key {unknown[0]!r} (a mistyped option?)")
    missing = [k for k in ("modalities",) + names if k not in d and k not in ADDED_LATER]
    if missing:
      raise ValueError(f"it lacks {', '.join(repr(k) for k in missing)}")
    if not isinstance(d["modalities"], list) or not d["modalities"]:
      raise ValueError(f"modalities must be a list of modalities, got {d['modalities']!r}")
    modalities = []
    for i, m in enumerate(d["modalities"]):
      if not isinstance(m, dict) or {"name", "kind", "shape"} - set(m):
        raise ValueError(f"modality {i} must have a name, a kind and a shape, got {m!r}")
      if "family" not in m:  # written before families
        m = {**m, "family": legacy_family(m["shape"])}
      modalities.append(Modality.from_dict(m))
    d = {**ADDED_LATER, **d}
    arch_options = d.get(ARCHITECTURE_OPTIONS, [])
    if not isinstance(arch_options, list) or not all(isinstance(o, str) for o in arch_options):
      raise ValueError(f"{ARCHITECTURE_OPTIONS} must be a list of key=value strings")
    return cls.make(
      d["model"],
      modalities,
      d["architecture"],
      d["dataset"],
      arch_options,
      **{k: v for k, v in d.items() if k in names},
    )

  def differences(self, other: "ModelConfig") -> Dict[str, tuple]:
    """{field: (self's value, other's value)} where they differ."""
    a, b = self.as_dict(), other.as_dict()
    if a["model"] != b["model"]:  # their options differ too, but only this matters
      return {"model": (a["model"], b["model"])}
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def build_model(config: ModelConfig):
  """The objective named by `config`, with every variable created."""
  cls = registry.model_class(config.model)
  networks = architecture.get_architecture(config.architecture, config.architecture_options)
  model = cls(config.modalities, config.options, networks)
  model.dataset_name = config.dataset
  return model.initialize()


def make_model(
  model: str, data, architecture: Optional[str] = None, architecture_options=(), **options
):
  """The registered model `model` (e.g. "jmvae_kl") for `data`, with every variable created.

  data: a DataSet (its modalities, architecture and name), or a sequence of Modality (then
  `architecture`, default the paper's MLPs "mnist_mlp"); options: the model's options (its
  options dataclass's fields, e.g. latent_dim=16, alpha=0.1), the paper's for the rest;
  architecture_options: those of a builder such as "generic" (e.g. {"hidden": "256x256"}). The
  initial weights are those of the options' seed: what runners.train builds with the same
  flags (keras.utils.set_random_seed, then the model under the current dtype policy)."""
  if isinstance(data, DataSet):
    modalities, default_architecture, dataset = data.modalities, data.architecture, data.name
  else:
    modalities, default_architecture, dataset = tuple(data), "mnist_mlp", ""
  config = ModelConfig.make(
    model,
    modalities,
    architecture or default_architecture,
    dataset,
    architecture_options,
    **options,
  )
  keras.utils.set_random_seed(config.seed)
  return build_model(config)
