"""Typed configs and the model registry.

`ModelConfig` says which objective to build, on which data set's modalities and
networks, with the options that objective uses (its `options_class`, defined
beside the model). It is written into the model directory as `run.json` (flat:
model, dataset, architecture, modalities, then the options) so evaluation and
export can rebuild the model and a restart can tell a checkpoint of another
model. `TrainConfig` holds the optimisation settings (the paper's values).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Dict, Optional, Tuple

from jmvae_tf import models, networks, registry
from jmvae_tf.modalities import GAUSSIAN_FIXED, Modality, mnist_modalities

MODEL_CLASSES = {
  "jmvae": models.JMVAE,
  "jmvae_kl": models.JMVAEKL,
  "hierarchical_jmvae": models.HierarchicalJMVAE,
  "cvae": models.CVAE,
  "cmma": models.CMMA,
  "jmvae_kl_gan": models.JMVAEKLGAN,
}
assert tuple(MODEL_CLASSES) == registry.MODEL_NAMES


def options_class(model: str):
  if model not in MODEL_CLASSES:
    raise ValueError(f"unknown model {model!r}; choose from {sorted(MODEL_CLASSES)}")
  return MODEL_CLASSES[model].options_class


def option_names(model: str) -> Tuple[str, ...]:
  """The options `model` is configured by (its options dataclass's fields)."""
  return tuple(f.name for f in dataclasses.fields(options_class(model)))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """An objective, its options, and the data it reads. Build one with `make`."""

  model: str
  options: models.ModelOptions
  modalities: Tuple[Modality, ...] = mnist_modalities()
  architecture: str = networks.MNIST_MLP.name
  dataset: str = "mnist"

  def __post_init__(self):
    if not isinstance(self.options, options_class(self.model)):
      raise ValueError(
        f"{self.model} takes {options_class(self.model).__name__}, got {type(self.options).__name__}"
      )
    networks.get_architecture(self.architecture)
    object.__setattr__(self, "modalities", tuple(self.modalities))
    fixed = any(m.kind == GAUSSIAN_FIXED for m in self.modalities)
    if self.options.decoder_variance != networks.FIXED_VARIANCE and not fixed:
      raise ValueError(
        f"decoder_variance={self.options.decoder_variance} has no effect on {self.dataset}: "
        f"none of its modalities has a fixed-variance Gaussian likelihood"
      )

  @classmethod
  def make(
    cls,
    model: str = "jmvae_kl",
    modalities=None,
    architecture: Optional[str] = None,
    dataset: str = "mnist",
    **options,
  ) -> "ModelConfig":
    """`model` with `options` (only those it uses: another is a ValueError naming it)."""
    unknown = sorted(set(options) - set(option_names(model)))
    if unknown:
      raise ValueError(f"{model} has no option {', '.join(unknown)}; it has {option_names(model)}")
    return cls(
      model,
      options_class(model)(**options),
      modalities if modalities is not None else mnist_modalities(),
      architecture or networks.MNIST_MLP.name,
      dataset,
    )

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
    """Reads run.json, also one written before options moved beside the models (it
    held every model's options: only those of its model are kept)."""
    d = json.loads(text)
    names = option_names(d["model"])
    return cls.make(
      d["model"],
      tuple(Modality.from_dict(m) for m in d["modalities"]),
      d.get("architecture"),
      d.get("dataset", "mnist"),
      **{k: v for k, v in d.items() if k in names},
    )

  def differences(self, other: "ModelConfig") -> Dict[str, tuple]:
    """{field: (self's value, other's value)} where they differ."""
    a, b = self.as_dict(), other.as_dict()
    if a["model"] != b["model"]:  # their options differ too, but only this matters
      return {"model": (a["model"], b["model"])}
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


PRECISIONS = ("float32", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How a model is trained: the optimisation, and what it trains on (`num_train`,
  `data_options`, `data_seed`), recorded in MODEL_DIR/train.json so that a resumed run can
  be checked against it (RESUME_RULES)."""

  epochs: int = 2000
  batch_size: int = 100
  learning_rate: float = 1e-3
  adam_epsilon: float = 1e-7  # the authors' code: 1e-4
  clipnorm: Optional[float] = None  # the authors' code: 5
  warmup_epochs: int = 200  # KL weight rises linearly 0 -> 1 over these epochs
  eval_every: int = 10  # epochs between evaluations of the held-out set
  data_seed: int = 0
  jit_compile: bool = False  # XLA: whole step on one device, per replica under a strategy
  steps_per_execution: int = 50
  strategy: str = "auto"  # MirroredStrategy only where there are several GPUs
  precision: str = "float32"  # or "mixed_bfloat16": hidden layers in bfloat16 (AMX/TPU/GPU)
  num_train: Optional[int] = None  # training examples read (None: not recorded)
  data_options: Tuple[str, ...] = ()  # the data set's options, "key=value", sorted
  # Batches over which BatchNorm's moving statistics are recomputed after the last epoch (0:
  # Keras' moving averages as they are; training.recalibrate_batchnorm).
  recalibrate_batchnorm: int = 0

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
    if self.adam_epsilon <= 0:
      raise ValueError(f"adam_epsilon must be positive, got {self.adam_epsilon}")
    if self.clipnorm is not None and self.clipnorm <= 0:
      raise ValueError(f"clipnorm must be positive, got {self.clipnorm}")
    if self.recalibrate_batchnorm < 0:
      raise ValueError(f"recalibrate_batchnorm must be >= 0, got {self.recalibrate_batchnorm}")
    if self.recalibrate_batchnorm and self.strategy in ("mirrored", "multi_worker"):
      raise ValueError(
        f"recalibrate_batchnorm runs on one replica, not with strategy {self.strategy!r}; "
        "train with --strategy=one_device to use it"
      )
    if self.num_train is not None and self.num_train < 1:
      raise ValueError(f"num_train must be at least 1, got {self.num_train}")
    object.__setattr__(self, "data_options", tuple(sorted(self.data_options)))

  def as_dict(self) -> Dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: Dict) -> "TrainConfig":
    """Reads what as_dict wrote, also one from before a field existed (its default)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: (tuple(v) if k == "data_options" else v) for k, v in d.items() if k in names})

  def resume_conflicts(self, asked: "TrainConfig") -> Dict[str, tuple]:
    """{field: (self's value, asked's value)} for the fields that RESUME_RULES fixes and
    that differ: a run trained with `self` cannot be resumed with `asked`. A num_train of
    None (not recorded) conflicts with nothing."""
    conflicts = {}
    for name, (may_change, _) in RESUME_RULES.items():
      saved, wanted = getattr(self, name), getattr(asked, name)
      if may_change or saved == wanted or (name == "num_train" and None in (saved, wanted)):
        continue
      conflicts[name] = (saved, wanted)
    return conflicts


# Which settings a resumed run may change (True) and which it must keep (False), and why.
# Those that change the optimisation or the data are fixed: a checkpoint's Adam moments,
# step count and warm-up state belong to them, and the data pipeline is a function of
# (data_seed, epoch, step) over the same examples and batch size. The runner's flags that are
# not here may change too: --verbose, thread counts, --data_dir (the same files moved),
# --validation (which held-out split is evaluated), --model_dir. The model's own options
# (run.json) never change: another model is refused by training.check_model_dir.
RESUME_RULES: Dict[str, Tuple[bool, str]] = {
  "epochs": (True, "the run continues up to the new total"),
  "eval_every": (True, "how often the held-out set is evaluated, not what is learned"),
  "steps_per_execution": (True, "how many steps run per call: the same steps"),
  "jit_compile": (True, "how the same steps are compiled"),
  "strategy": (True, "where the same global batches run"),
  "learning_rate": (
    True,
    "applied: the restored optimiser takes the new value from the resumed epoch on, "
    "recorded in train.json and flags_history.txt",
  ),
  "recalibrate_batchnorm": (
    True,
    "what inference normalises with after the last epoch, not what is learned",
  ),
  "batch_size": (False, "changes the steps, the data order and the gradient noise"),
  "adam_epsilon": (False, "changes the optimiser whose state the checkpoint holds"),
  "clipnorm": (False, "changes the optimiser whose state the checkpoint holds"),
  "warmup_epochs": (False, "changes the objective of the epochs already weighted"),
  "data_seed": (False, "changes the order and the binarisation of the data"),
  "precision": (False, "changes the arithmetic of the steps"),
  "num_train": (False, "changes the training examples"),
  "data_options": (False, "changes the data (e.g. CelebA's crop or split)"),
}
assert set(RESUME_RULES) == {f.name for f in dataclasses.fields(TrainConfig)}


def build_model(config: ModelConfig) -> models.MultimodalVAE:
  """The objective named by `config`, with every variable created."""
  cls = MODEL_CLASSES[config.model]
  options = dataclasses.asdict(config.options)
  # The likelihood is the decoders' business: the architecture carries it, not each model.
  architecture = networks.with_decoder_variance(
    networks.get_architecture(config.architecture), options.pop("decoder_variance")
  )
  model = cls(config.modalities, architecture=architecture, **options)
  return model.initialize()
