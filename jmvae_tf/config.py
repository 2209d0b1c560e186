"""The model's config, and the model built from it.

`ModelConfig` says which objective to build (a name of `jmvae_tf.registry`), on which data
set's modalities and networks, with the options that objective uses (its options dataclass in
`jmvae_tf.options`). It is written into the model directory as `run.json` (flat: model,
dataset, architecture, modalities, then the options) so evaluation and export can rebuild the
model and a restart can tell a checkpoint of another model. How a model is trained is
`jmvae_tf.options.TrainConfig`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Dict, Sequence, Tuple

from jmvae_tf import likelihoods, networks, registry
from jmvae_tf.modalities import Modality
from jmvae_tf.options import ModelOptions

# Fields that a run.json written before they existed lacks, with the value those runs had.
ADDED_LATER = {"dataset": "mnist", "architecture": "mnist_mlp", "decoder_variance": 1.0}


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

  def __post_init__(self):
    options_class = registry.entry(self.model).options
    if not isinstance(self.options, options_class):
      raise ValueError(
        f"{self.model} takes {options_class.__name__}, got {type(self.options).__name__}"
      )
    networks.get_architecture(self.architecture)
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
    **options,
  ) -> "ModelConfig":
    """`model` with `options` (only those it uses: another is a ValueError naming it), the
    defaults that depend on the modalities filled in (ModelOptions.bind)."""
    unknown = sorted(set(options) - set(option_names(model)))
    if unknown:
      raise ValueError(f"{model} has no option {', '.join(unknown)}; it has {option_names(model)}")
    modalities = tuple(modalities)
    bound = registry.entry(model).options(**options).bind([m.name for m in modalities])
    return cls(model, bound, modalities, architecture, dataset)

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
    return {
      "model": self.model,
      "dataset": self.dataset,
      "architecture": self.architecture,
      "modalities": [m.to_dict() for m in self.modalities],
      **dataclasses.asdict(self.options),
    }

  def to_json(self) -> str:
    return json.dumps(self.as_dict(), indent=2, sort_keys=True)

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
    if "model" not in d:
      raise ValueError("it lacks 'model'")
    names = option_names(d["model"])
    missing = [k for k in ("modalities",) + names if k not in d and k not in ADDED_LATER]
    if missing:
      raise ValueError(f"it lacks {', '.join(repr(k) for k in missing)}")
    if not isinstance(d["modalities"], list) or not d["modalities"]:
      raise ValueError(f"modalities must be a list of modalities, got {d['modalities']!r}")
    modalities = []
    for i, m in enumerate(d["modalities"]):
      if not isinstance(m, dict) or {"name", "kind", "shape"} - set(m):
        raise ValueError(f"modality {i} must have a name, a kind and a shape, got {m!r}")
      modalities.append(Modality.from_dict(m))
    d = {**ADDED_LATER, **d}
    return cls.make(
      d["model"],
      modalities,
      d["architecture"],
      d["dataset"],
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
  architecture = networks.get_architecture(config.architecture)
  return cls(config.modalities, config.options, architecture).initialize()
