"""Every option of the project, once: its default, its choices and its help.

The options dataclasses here configure the objectives (one per model, the paper's choice the
default), training (`TrainConfig`: what a resumed run must keep apart from what it may change)
and serving (`ServingLimits`). They import no TensorFlow, so the runners define their flags
from them (`runners/flagutil.py`, `define_option_flags`) and a bad value is refused before
TensorFlow starts. Each field is made by `option(default, help, ...)`; `Options.__post_init__`
checks choices and bounds, and each class adds the checks of its own.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Dict, Optional, Sequence, Tuple

# Choices named by more than one module.
ALPHA_REDUCTIONS = ("sum", "mean")
GAN_LIKELIHOODS = ("features", "pixels")
GAN_PRIORS = ("normal", "uniform")
DISCRIMINATOR_STYLES = ("paper", "authors")
INCOMPLETE_WEIGHTINGS = ("example", "pattern")
PRECISIONS = ("float32", "mixed_bfloat16")
STRATEGIES = ("auto", "mirrored", "default", "one_device", "multi_worker")
AUTO = -1  # a thread count left to the machine (runtime.machine_defaults)
# Far above any latent size in use (the paper: 2 to 128); more is a typo, refused before the
# networks are built out of memory.
MAX_LATENT_DIM = 10_000
MAX_LAYERS = 64


def option(
  default: Any,
  help: str,  # noqa: A002 (absl's word for it)
  choices: Optional[Sequence[Any]] = None,
  lower_bound: Optional[float] = None,
  upper_bound: Optional[float] = None,
  flag: bool = True,
  **field_kwargs,
) -> Any:
  """A dataclass field with what its flag needs: help, choices (an enum flag), bounds
  (checked by the flag parser and by the dataclass). `flag=False`: recorded, not a flag."""
  metadata = {"help": help, "flag": flag}
  if choices is not None:
    metadata["choices"] = tuple(choices)
  if lower_bound is not None:
    metadata["lower_bound"] = lower_bound
  if upper_bound is not None:
    metadata["upper_bound"] = upper_bound
  return dataclasses.field(default=default, metadata=metadata, **field_kwargs)


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _checked_type(name: str, hint, value):
  """`value` as a field of type `hint` takes it (an int for a float field becomes a float, a
  list for a tuple one a tuple), or a ValueError naming the field: values also come from
  JSON files (run.json, train.json), where "64" or 1e12 can stand for latent_dim's 64."""
  args = typing.get_args(hint)
  if typing.get_origin(hint) is typing.Union and type(None) in args:
    if value is None:
      return None
    (hint,) = [a for a in args if a is not type(None)]
  if typing.get_origin(hint) is tuple:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
      return tuple(value)
    raise ValueError(f"{name} must be a list of strings, got {value!r}")
  if hint is float and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
    raise ValueError(f"{name} must be {_TYPE_NAMES[hint]}, got {value!r}")
  return value


class Options:
  """Base of the options dataclasses: checks every field's type, choices and bounds, and that
  floats are finite numbers (a NaN passes every comparison)."""

  def __post_init__(self):
    hints = typing.get_type_hints(type(self))
    for f in dataclasses.fields(self):
      value = _checked_type(f.name, hints[f.name], getattr(self, f.name))
      object.__setattr__(self, f.name, value)
      choices = f.metadata.get("choices")
      if choices is not None and value not in choices:
        raise ValueError(f"{f.name} must be one of {list(choices)}, got {value!r}")
      if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{f.name} must be a finite number, got {value}")
      low, high = f.metadata.get("lower_bound"), f.metadata.get("upper_bound")
      if low is not None and value is not None and value < low:
        raise ValueError(f"{f.name} must be at least {low}, got {value}")
      if high is not None and value is not None and value > high:
        raise ValueError(f"{f.name} must be at most {high}, got {value}")

  @classmethod
  def field_names(cls) -> Tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _positive(obj, *names):
  for name in names:
    value = getattr(obj, name)
    if value is not None and not value > 0:
      raise ValueError(f"{name} must be positive, got {value}")


# --- the objectives ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelOptions(Options):
  """What every objective is configured by; subclasses add their own fields."""

  latent_dim: int = option(
    64, "Size of z (2 for the paper's Figure 5).", lower_bound=1, upper_bound=MAX_LATENT_DIM
  )
  seed: int = option(0, "Seed of the model's initialisation and sampling.")
  # Smaller weighs reconstruction more against the KL terms; the architecture's decoders take
  # it. Keyword-only, so subclasses' positional fields keep their places.
  decoder_variance: float = option(
    1.0,
    "Variance of the fixed-variance Gaussian decoders (CelebA's; the paper: 1).",
    kw_only=True,
  )

  # How a batch's bounds are weighed where its examples lack modalities (docs/INCOMPLETE.md).
  incomplete_weighting: str = option(
    "example",
    "Joint models on incomplete data: each example's bound counts once (example: a bound on "
    "the data's log-likelihood) or each pattern of held modalities in a batch weighs the same "
    "(pattern: its few complete examples as much as its many incomplete ones).",
    INCOMPLETE_WEIGHTINGS,
    kw_only=True,
  )

  def __post_init__(self):
    super().__post_init__()
    _positive(self, "decoder_variance")

  def bind(self, modality_names: Sequence[str]) -> "ModelOptions":
    """These options for a data set with these modalities (a default that depends on them,
    such as CVAE's target, filled in)."""
    return self


@dataclasses.dataclass(frozen=True)
class JMVAEKLOptions(ModelOptions):
  """JMVAE-kl's options; the paper's choices are the defaults."""

  alpha: float = option(
    1.0,
    "JMVAE-kl weight of the KL(q(z|x,w)||q(z|.)) terms (arXiv/MultiVae: 0.1).",
    lower_bound=0,
  )
  anneal_alpha: bool = option(False, "Warm up the alpha terms too (MultiVae does).")
  alpha_reduction: str = option(
    "sum", "Combine the alpha terms by sum or mean (later Tars code: mean).", ALPHA_REDUCTIONS
  )


@dataclasses.dataclass(frozen=True)
class HierarchicalJMVAEOptions(ModelOptions):
  num_layers: int = option(2, "Stochastic layers of hierarchical JMVAE.", upper_bound=MAX_LAYERS)

  def __post_init__(self):
    super().__post_init__()
    if self.num_layers < 2:
      raise ValueError(f"hierarchical JMVAE needs num_layers >= 2, got {self.num_layers}")


@dataclasses.dataclass(frozen=True)
class ConditionalOptions(ModelOptions):
  """CVAE's and CMMA's: which modality is generated given which (by default the data set's
  first given its second)."""

  target: Optional[str] = option(
    None, "CVAE/CMMA: the modality generated (default: the data set's first)."
  )
  condition: Optional[str] = option(
    None, "CVAE/CMMA: the modality conditioned on (default: the data set's second)."
  )

  def __post_init__(self):
    super().__post_init__()
    if self.target is not None and self.target == self.condition:
      raise ValueError(f"target and condition must differ, both are {self.target!r}")

  def bind(self, modality_names):
    names = list(modality_names)
    target = (
      self.target
      if self.target is not None
      else next((n for n in names if n != self.condition), None)
    )
    condition = (
      self.condition
      if self.condition is not None
      else next((n for n in names if n != target), None)
    )
    return dataclasses.replace(self, target=target, condition=condition)


@dataclasses.dataclass(frozen=True)
class JMVAEKLGANOptions(JMVAEKLOptions):
  """JMVAE-kl's options and the VAE-GAN's; the paper's (Larsen et al.'s) choices first."""

  gan_gamma: float = option(
    1.0, "JMVAE-kl-GAN: weight of the image likelihood in the decoder's loss.", lower_bound=0
  )
  gan_likelihood: str = option(
    "features",
    "JMVAE-kl-GAN image likelihood: in the discriminator's features (Larsen et al.) or "
    "pixels (the authors' code).",
    GAN_LIKELIHOODS,
  )
  gan_prior: str = option(
    "normal",
    "JMVAE-kl-GAN: z of the generated fakes, N(0,I) or uniform(-1,1) (the authors' code).",
    GAN_PRIORS,
  )
  gan_discriminator: str = option(
    "paper",
    "JMVAE-kl-GAN discriminator: BatchNorm+ReLU (paper) or leaky ReLU, no BatchNorm (authors).",
    DISCRIMINATOR_STYLES,
  )
  gan_beta1: float = option(0.9, "JMVAE-kl-GAN: Adam beta1 of its three optimisers (authors: 0.5).")

  def __post_init__(self):
    super().__post_init__()
    if not 0 <= self.gan_beta1 < 1:
      raise ValueError(f"gan_beta1 must be in [0, 1), got {self.gan_beta1}")


# --- training ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FixedSettings(Options):
  """What the checkpoints of a run were trained with, which a resumed run must keep: the
  optimiser whose state they hold, the warm-up of the epochs already weighted, the
  arithmetic, and the data (the pipeline is a function of data_seed, epoch and step over the
  same examples and batch size)."""

  batch_size: int = option(100, "Global batch size.", lower_bound=1)
  adam_epsilon: float = option(1e-7, "Adam epsilon (the authors' code: 1e-4).")
  clipnorm: Optional[float] = option(None, "Clip the global gradient norm (the authors' code: 5).")
  warmup_epochs: int = option(
    200, "KL warm-up: weight rises 0 -> 1 over these epochs.", lower_bound=0
  )
  data_seed: int = option(0, "Seed of shuffling and stochastic binarisation.")
  precision: str = option(
    "float32",
    "Keras dtype policy: mixed_bfloat16 runs hidden layers in bfloat16 (heads stay float32).",
    PRECISIONS,
  )
  num_train: Optional[int] = option(
    None,
    "Training examples: the first N (default: the data set's; MNIST 50,000 as the paper).",
    lower_bound=1,
  )
  # The data set's options, "key=value", sorted (--data_options, a flag of every runner).
  data_options: Tuple[str, ...] = option((), "", flag=False)
  # A digest of the training examples (DataSet.fingerprint; None: not recorded), so that a
  # resume on other files is refused and one on a moved copy of the same files is not.
  data_fingerprint: Optional[str] = option(None, "", flag=False)

  def __post_init__(self):
    super().__post_init__()
    _positive(self, "adam_epsilon", "clipnorm")
    object.__setattr__(self, "data_options", tuple(sorted(self.data_options)))


@dataclasses.dataclass(frozen=True)
class RunSettings(Options):
  """How a run goes on, which a resumed run may change: how long, how often it is evaluated,
  how the same steps are run and compiled, and the learning rate (applied to the restored
  optimiser from the resumed epoch on, and recorded)."""

  epochs: int = option(2000, "Total epochs (a resumed run continues up to this).", lower_bound=1)
  learning_rate: float = option(1e-3, "Adam learning rate.")
  eval_every: int = option(10, "Evaluate the held-out set every N epochs.", lower_bound=1)
  steps_per_execution: int = option(
    50, "Training steps per call into the compiled graph.", lower_bound=1
  )
  jit_compile: Optional[bool] = option(
    None,
    "XLA: the whole step on one device, each replica's forward and backward pass under a "
    "distribution strategy. Unset: the machine's choice (on for a CPU with AVX2 but no "
    "AVX-512, no GPU and one replica, where it was measured faster; off elsewhere; "
    "benchmarks/README.md).",
  )
  strategy: str = option(
    "auto",
    "tf.distribute strategy; auto: MirroredStrategy over several GPUs, none on one device.",
    STRATEGIES,
  )
  # What inference normalises with after the last epoch, not what is learned.
  recalibrate_batchnorm: int = option(
    0,
    "After the last epoch, set BatchNorm's moving statistics (what inference normalises "
    "with) to their average over this many training batches; 0: Keras' moving averages, "
    "which lag short runs (docs/CELEBA.md). One replica only.",
    lower_bound=0,
  )

  def __post_init__(self):
    super().__post_init__()
    _positive(self, "learning_rate")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How a model is trained: `fixed` (kept on resume) and `run` (may change); recorded flat in
  MODEL_DIR/train.json. `make(**settings)` builds one from flat settings."""

  fixed: FixedSettings = FixedSettings()
  run: RunSettings = RunSettings()

  @classmethod
  def make(cls, **settings) -> "TrainConfig":
    parts = {}
    for part in (FixedSettings, RunSettings):
      names = set(part.field_names())
      parts[part] = part(**{k: v for k, v in settings.items() if k in names})
    unknown = set(settings) - set(FixedSettings.field_names()) - set(RunSettings.field_names())
    if unknown:
      raise ValueError(f"no training setting {', '.join(sorted(unknown))}")
    return cls(parts[FixedSettings], parts[RunSettings])

  def replace(self, **settings) -> "TrainConfig":
    """This config with some settings changed (flat names)."""
    return TrainConfig.make(**{**self.as_dict(), **settings})

  def as_dict(self) -> Dict[str, Any]:
    return {**dataclasses.asdict(self.fixed), **dataclasses.asdict(self.run)}

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
    """Reads what as_dict wrote, also one from before a field existed (its default)."""
    names = set(FixedSettings.field_names()) | set(RunSettings.field_names())
    return cls.make(
      **{k: (tuple(v) if k == "data_options" else v) for k, v in d.items() if k in names}
    )

  def resume_conflicts(self, asked: "TrainConfig") -> Dict[str, tuple]:
    """{field: (self's value, asked's value)} for the fixed settings that differ: a run
    trained with `self` cannot be resumed with `asked`. A record of the data (num_train,
    data_fingerprint) that is None (not recorded) conflicts with nothing."""
    conflicts = {}
    fingerprinted = None not in (self.fixed.data_fingerprint, asked.fixed.data_fingerprint)
    for name in FixedSettings.field_names():
      saved, wanted = getattr(self.fixed, name), getattr(asked.fixed, name)
      if name == "data_options" and fingerprinted:
        # An option naming a folder (its name ends in _dir, as --data_dir) says where the
        # files are, not what they hold: the fingerprint compares that, so a moved copy
        # resumes.
        saved, wanted = (tuple(o for o in v if not _names_folder(o)) for v in (saved, wanted))
      recorded = name in ("num_train", "data_fingerprint")
      if saved == wanted or (recorded and None in (saved, wanted)):
        continue
      conflicts[name] = (saved, wanted)
    return conflicts


def _names_folder(option: str) -> bool:
  return option.partition("=")[0].strip().endswith("_dir")


# --- serving -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ServingLimits(Options):
  """The most one request may ask of an export; beyond them it is refused, in the graph.

  Work grows with batch size x num_steps (iterative sampling) and with num_samples, so
  without bounds one request could hold a server for days. The defaults allow 10 times
  the paper's 100 rounds of iterative sampling (Table 1) and batches far larger than
  interactive use needs.
  """

  max_batch_size: int = option(
    1024, "Most examples one request may send (larger batches are refused).", lower_bound=1
  )
  max_num_samples: int = option(1024, "Most draws one `sample` request may ask for.", lower_bound=1)
  max_num_steps: int = option(
    1000,
    "Most rounds of iterative sampling one request may ask for (JMVAE, hierarchical JMVAE).",
    lower_bound=1,
  )

  def __post_init__(self):
    for name, value in dataclasses.asdict(self).items():
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
