"""Typed configs and the model registry.

`ModelConfig` says which objective and networks to build; it is written into
the model directory as JSON so evaluation and export can rebuild the model, and
so a restart can tell a checkpoint of another model. `TrainConfig` holds the
optimisation settings (paper's values as defaults).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Optional, Tuple

from jmvae_tf import models, networks, registry
from jmvae_tf.modalities import Modality, mnist_modalities

MODEL_CLASSES = {
    "jmvae": models.JMVAE,
    "jmvae_kl": models.JMVAEKL,
    "hierarchical_jmvae": models.HierarchicalJMVAE,
    "cvae": models.CVAE,
    "cmma": models.CMMA,
}
assert tuple(MODEL_CLASSES) == registry.MODEL_NAMES


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  model: str = "jmvae_kl"
  modalities: Tuple[Modality, ...] = mnist_modalities()
  latent_dim: int = 64
  architecture: str = networks.MNIST_MLP.name
  seed: int = 0
  # JMVAE-kl (paper: alpha 1, alpha terms not warmed up, summed over subsets).
  alpha: float = 1.0
  anneal_alpha: bool = False
  alpha_reduction: str = "sum"
  # Hierarchical JMVAE: number of stochastic layers L.
  num_layers: int = 2
  # CVAE / CMMA: generate `target` given `condition`.
  target: str = "image"
  condition: str = "label"

  def __post_init__(self):
    if self.model not in MODEL_CLASSES:
      raise ValueError(f"unknown model {self.model!r}; choose from {sorted(MODEL_CLASSES)}")
    if self.latent_dim < 1:
      raise ValueError(f"latent_dim must be positive, got {self.latent_dim}")
    networks.get_architecture(self.architecture)
    object.__setattr__(self, "modalities", tuple(self.modalities))

  def to_json(self) -> str:
    d = dataclasses.asdict(self)
    d["modalities"] = [m.to_dict() for m in self.modalities]
    return json.dumps(d, indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> "ModelConfig":
    d = json.loads(text)
    d["modalities"] = tuple(Modality.from_dict(m) for m in d["modalities"])
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in known})


PRECISIONS = ("float32", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  epochs: int = 2000
  batch_size: int = 100
  learning_rate: float = 1e-3
  adam_epsilon: float = 1e-7        # the authors' code: 1e-4
  clipnorm: Optional[float] = None  # the authors' code: 5
  warmup_epochs: int = 200          # KL weight rises linearly 0 -> 1 over these epochs
  eval_every: int = 10              # epochs between evaluations of the held-out set
  data_seed: int = 0
  jit_compile: bool = False         # XLA per replica: slower than TF's fused kernels here (benchmarks/README.md)
  steps_per_execution: int = 50
  strategy: str = "mirrored"
  precision: str = "float32"        # or "mixed_bfloat16": hidden layers in bfloat16 (faster on AMX/TPU/GPU)

  def __post_init__(self):
    for name in ("epochs", "batch_size", "eval_every", "steps_per_execution"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
    if self.warmup_epochs < 0:
      raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
    if self.precision not in PRECISIONS:
      raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
    if self.learning_rate <= 0:
      raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")


def build_model(config: ModelConfig) -> models.MultimodalVAE:
  """The objective named by `config`, with every variable created."""
  arch = networks.get_architecture(config.architecture)
  common = dict(latent_dim=config.latent_dim, seed=config.seed, architecture=arch)
  if config.model == "jmvae":
    model = models.JMVAE(config.modalities, **common)
  elif config.model == "jmvae_kl":
    model = models.JMVAEKL(config.modalities, alpha=config.alpha, anneal_alpha=config.anneal_alpha,
                           alpha_reduction=config.alpha_reduction, **common)
  elif config.model == "hierarchical_jmvae":
    model = models.HierarchicalJMVAE(config.modalities, num_layers=config.num_layers, **common)
  else:
    model = MODEL_CLASSES[config.model](config.modalities, config.target, config.condition, **common)
  return model.initialize()
