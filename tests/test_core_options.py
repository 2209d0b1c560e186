"""jmvae_tf/core/options.py: every option once, checked in its dataclass (choices, bounds, finite
floats), TrainConfig's flat record and what a resume must keep, ServingLimits, and the flags the
runners define from the same fields."""

import dataclasses
import json
import math
import re
import typing
from pathlib import Path

import pytest
from absl import flags

from jmvae_tf.core import options
from jmvae_tf.models import registry
from runners import export as export_runner
from runners import train as train_runner

ROOT = Path(__file__).resolve().parents[1]
MODEL_OPTIONS = tuple(dict.fromkeys(registry.entry(n).options for n in registry.model_names()))

# --- the checks of Options ------------------------------------------------------------------


@pytest.mark.parametrize(
  "cls, values, message",
  [
    (options.JMVAEKLOptions, dict(alpha_reduction="max"), "alpha_reduction must be one of "),
    (options.RunSettings, dict(strategy="tpu"), "strategy must be one of ['auto', 'mirrored', "),
    (options.FixedSettings, dict(precision="float16"), "precision must be one of ['float32', "),
    (options.JMVAEKLGANOptions, dict(gan_prior="cauchy"), "gan_prior must be one of ['normal', "),
    (options.ModelOptions, dict(latent_dim=0), "latent_dim must be at least 1, got 0"),
    (options.FixedSettings, dict(batch_size=0), "batch_size must be at least 1, got 0"),
    (options.FixedSettings, dict(num_train=0), "num_train must be at least 1, got 0"),
    (options.FixedSettings, dict(warmup_epochs=-1), "warmup_epochs must be at least 0, got -1"),
    (options.RunSettings, dict(recalibrate_batchnorm=-1), "recalibrate_batchnorm must be at least"),
    (options.JMVAEKLOptions, dict(alpha=-0.5), "alpha must be at least 0, got -0.5"),
  ],
)
def test_choices_and_lower_bounds_are_refused_naming_the_field(cls, values, message):
  with pytest.raises(ValueError) as refused:
    cls(**values)
  assert str(refused.value).startswith(message), str(refused.value)


@pytest.mark.parametrize(
  "cls, field",
  [
    (options.JMVAEKLOptions, "alpha"),  # a NaN passes `value < 0`: only the finite check sees it
    (options.ModelOptions, "decoder_variance"),
    (options.RunSettings, "learning_rate"),
    (options.FixedSettings, "adam_epsilon"),
    (options.FixedSettings, "clipnorm"),
    (options.JMVAEKLGANOptions, "gan_gamma"),
  ],
)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(cls, field, value):
  with pytest.raises(ValueError, match=f"^{field} must be a finite number, got {value}$"):
    cls(**{field: value})


def test_the_checks_each_class_adds():
  for field in ("adam_epsilon", "clipnorm"):
    with pytest.raises(ValueError, match=f"{field} must be positive, got 0.0"):
      options.FixedSettings(**{field: 0.0})
  with pytest.raises(ValueError, match="learning_rate must be positive, got 0.0"):
    options.RunSettings(learning_rate=0.0)
  with pytest.raises(ValueError, match="decoder_variance must be positive, got -1.0"):
    options.ModelOptions(decoder_variance=-1.0)
  with pytest.raises(ValueError, match="num_layers >= 2, got 1"):
    options.HierarchicalJMVAEOptions(num_layers=1)
  with pytest.raises(ValueError, match=r"gan_beta1 must be in \[0, 1\), got 1.0"):
    options.JMVAEKLGANOptions(gan_beta1=1.0)
  with pytest.raises(ValueError, match="target and condition must differ, both are 'image'"):
    options.ConditionalOptions(target="image", condition="image")
  # what is allowed: an unset optional field, the bounds themselves
  assert options.FixedSettings(clipnorm=None, num_train=None, warmup_epochs=0).num_train is None
  assert options.JMVAEKLOptions(alpha=0.0).alpha == 0.0
  assert options.FixedSettings(data_options=("b=1", "a=2")).data_options == ("a=2", "b=1")


def test_bind_fills_the_conditional_defaults_from_the_modality_names():
  bound = options.ConditionalOptions().bind(["x", "w"])
  assert bound == options.ConditionalOptions(target="x", condition="w")
  assert options.ConditionalOptions(condition="x").bind(["x", "w"]).target == "w"
  assert options.ConditionalOptions(target="w").bind(["a", "w", "c"]).condition == "a"
  plain = options.JMVAEKLOptions(alpha=0.1)
  assert plain.bind(["x", "w"]) is plain


# --- TrainConfig ----------------------------------------------------------------------------


def test_train_config_make_splits_flat_settings_and_refuses_unknown_ones():
  made = options.TrainConfig.make(batch_size=8, epochs=3, learning_rate=1e-4)
  assert made.fixed == options.FixedSettings(batch_size=8)
  assert made.run == options.RunSettings(epochs=3, learning_rate=1e-4)
  assert options.TrainConfig.make() == options.TrainConfig()
  with pytest.raises(ValueError, match="^no training setting bogus, other$"):
    options.TrainConfig.make(epochs=3, other=1, bogus=2)
  with pytest.raises(ValueError, match="batch_size must be at least 1"):
    options.TrainConfig.make(batch_size=0)


def test_train_config_replace_and_its_flat_dict_round_trip():
  made = options.TrainConfig.make(batch_size=8, data_options=("crop=center",), clipnorm=5.0)
  changed = made.replace(epochs=7, batch_size=4)
  assert changed.run.epochs == 7 and changed.fixed.batch_size == 4
  assert changed.fixed.clipnorm == 5.0 and made.fixed.batch_size == 8  # made is unchanged
  flat = made.as_dict()
  names = set(options.FixedSettings.field_names()) | set(options.RunSettings.field_names())
  assert set(flat) == names and flat["batch_size"] == 8 and flat["epochs"] == 2000
  # through JSON, as train.json holds it (tuples come back as lists)
  assert options.TrainConfig.from_dict(json.loads(json.dumps(flat))) == made


def test_an_old_train_json_without_a_field_reads_it_with_its_default():
  """A record from before recalibrate_batchnorm and precision existed, and with a setting
  since removed, reads back with today's defaults."""
  old = options.TrainConfig.make(batch_size=8, epochs=5).as_dict()
  del old["recalibrate_batchnorm"], old["precision"]
  old["removed_setting"] = 3
  read = options.TrainConfig.from_dict(old)
  assert read.run.recalibrate_batchnorm == 0 and read.fixed.precision == "float32"
  assert read == options.TrainConfig.make(batch_size=8, epochs=5)


def test_resume_rules_cover_every_train_setting_and_allow_what_does_not_change_learning():
  fields = set(options.FixedSettings.field_names()) | set(options.RunSettings.field_names())
  may = set(options.RunSettings.field_names())
  assert may == {
    "epochs",
    "eval_every",
    "steps_per_execution",
    "jit_compile",
    "strategy",
    "learning_rate",
    "recalibrate_batchnorm",
  }
  documented = (ROOT / "docs" / "RELIABILITY.md").read_text()
  # the table there is this one (a field no flag sets, the data's fingerprint, by its name)
  assert all(f"`--{name}`" in documented or f"`{name}`" in documented for name in fields)
  saved = options.TrainConfig.make(epochs=2, batch_size=8)
  asked = options.TrainConfig.make(epochs=5, batch_size=8, eval_every=1, learning_rate=1e-4)
  assert saved.resume_conflicts(asked) == {}
  assert saved.resume_conflicts(options.TrainConfig.make(batch_size=4, data_seed=3)) == {
    "batch_size": (8, 4),
    "data_seed": (0, 3),
  }
  # a run trained through the library, which records no num_train, resumes from the runner
  assert saved.resume_conflicts(options.TrainConfig.make(batch_size=8, num_train=96)) == {}


def test_resume_conflicts_name_each_fixed_setting_that_differs():
  saved = options.TrainConfig.make(num_train=96, data_options=("crop=center",))
  asked = saved.replace(num_train=100, data_options=(), precision="mixed_bfloat16", epochs=9)
  assert saved.resume_conflicts(asked) == {
    "num_train": (96, 100),
    "data_options": (("crop=center",), ()),
    "precision": ("float32", "mixed_bfloat16"),
  }
  # a num_train not recorded (None) conflicts with none, either way round
  assert "num_train" not in saved.resume_conflicts(asked.replace(num_train=None))
  assert "num_train" not in asked.replace(num_train=None).resume_conflicts(saved)
  # so with the data's fingerprint: a train.json from before it was recorded resumes
  fingerprinted = saved.replace(data_fingerprint="0123456789abcdef")
  assert fingerprinted.resume_conflicts(saved) == {} == saved.resume_conflicts(fingerprinted)
  assert fingerprinted.resume_conflicts(saved.replace(data_fingerprint="fedcba9876543210")) == {
    "data_fingerprint": ("0123456789abcdef", "fedcba9876543210")
  }


@pytest.mark.parametrize(
  "cls, values, message",
  [
    (options.ModelOptions, dict(latent_dim="64"), "latent_dim must be an integer, got '64'"),
    (options.ModelOptions, dict(latent_dim=64.0), "latent_dim must be an integer, got 64.0"),
    (options.ModelOptions, dict(latent_dim=True), "latent_dim must be an integer, got True"),
    (options.ModelOptions, dict(latent_dim=20_000), "latent_dim must be at most 10000"),
    (options.JMVAEKLOptions, dict(anneal_alpha=1), "anneal_alpha must be true or false, got 1"),
    (options.JMVAEKLOptions, dict(alpha="0.1"), "alpha must be a number, got '0.1'"),
    (options.ConditionalOptions, dict(target=3), "target must be a string, got 3"),
    (options.FixedSettings, dict(data_options="a=b"), "data_options must be a list of strings"),
  ],
)
def test_values_of_the_wrong_type_are_refused_naming_the_field(cls, values, message):
  """What JSON (run.json, train.json) can hold besides what the flags give: a string for a
  number, a float for an integer, a number for a flag; an int for a float is taken."""
  with pytest.raises(ValueError, match=re.escape(message)):
    cls(**values)
  assert (
    options.JMVAEKLOptions(alpha=1).alpha == 1.0
    and type(options.JMVAEKLOptions(alpha=1).alpha) is float
  )


# --- ServingLimits ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", options.ServingLimits.field_names())
@pytest.mark.parametrize("value", [0, -3, True, 2.0, "8"])
def test_serving_limits_are_positive_integers(field, value):
  with pytest.raises(ValueError) as refused:
    options.ServingLimits(**{field: value})
  assert str(refused.value).startswith(f"{field} must be"), str(refused.value)


def test_serving_limits_defaults_allow_ten_times_the_papers_iterations():
  limits = options.ServingLimits()
  assert dataclasses.asdict(limits) == {
    "max_batch_size": 1024,
    "max_num_samples": 1024,
    "max_num_steps": 1000,
  }
  assert options.ServingLimits(max_batch_size=1).max_batch_size == 1


# --- the runners' flags are the fields -----------------------------------------------------


def _flag_fields(classes):
  """(class, field) for every field of `classes` that is a flag."""
  return [(c, f) for c in classes for f in dataclasses.fields(c) if f.metadata.get("flag")]


def _defined(define_flags):
  fv = flags.FlagValues()
  define_flags(fv)
  return fv


@pytest.mark.parametrize(
  "define_flags, classes",
  [
    (train_runner.define_flags, MODEL_OPTIONS + (options.FixedSettings, options.RunSettings)),
    (export_runner.define_flags, (options.ServingLimits,)),
  ],
  ids=["train", "export"],
)
def test_every_option_is_a_flag_with_its_default_help_choices_and_bound(define_flags, classes):
  fv = _defined(define_flags)
  fields = _flag_fields(classes)
  assert fields
  for cls, field in fields:
    where = f"{cls.__name__}.{field.name}"
    assert field.name in fv, where
    flag = fv[field.name]
    assert flag.default == field.default, where
    if "choices" in field.metadata:  # absl puts the choices before an enum's help
      assert flag.parser.enum_values == list(field.metadata["choices"]), where
      choices = "|".join(field.metadata["choices"])
      assert flag.help == f"<{choices}>: {field.metadata['help']}", where
    else:
      assert flag.help == field.metadata["help"], where
    if "lower_bound" in field.metadata:
      assert flag.parser.lower_bound == field.metadata["lower_bound"], where
    if typing.get_type_hints(cls)[field.name] is bool:
      assert flag.flag_type() == "bool", where


def test_a_field_shared_by_several_models_has_one_default_and_help():
  """define_option_flags defines a shared field (latent_dim) from the first class: the others
  must agree, or a model would train with another default than its options say."""
  seen = {}
  for cls, field in _flag_fields(MODEL_OPTIONS):
    described = (field.default, field.metadata["help"], field.metadata.get("choices"))
    assert seen.setdefault(field.name, described) == described, f"{cls.__name__}.{field.name}"


def test_fields_that_are_not_flags_are_not_defined_from_the_options():
  fv = flags.FlagValues()
  from runners import flagutil

  flagutil.define_option_flags([options.FixedSettings], fv)
  assert "data_options" not in fv and "batch_size" in fv  # --data_options is the data flags'


def test_a_moved_folder_option_resumes_where_the_fingerprint_guards_the_content():
  """Issue 30: mnist_fashion resumed with fashion_dir pointing at a moved, byte-identical copy
  was refused (--data_options compared as text). An option naming a folder (*_dir) is left to
  the fingerprint where both sides have one; other options, and runs without one, still
  conflict."""
  saved = options.TrainConfig.make(
    data_options=("fashion_dir=/data/fashion",), data_fingerprint="0123456789abcdef"
  )
  moved = saved.replace(data_options=("fashion_dir=/elsewhere/fashion",))
  assert saved.resume_conflicts(moved) == {}
  other = moved.replace(data_fingerprint="fedcba9876543210")
  assert set(saved.resume_conflicts(other)) == {"data_fingerprint"}
  unrecorded = saved.replace(data_fingerprint=None)
  assert set(unrecorded.resume_conflicts(moved)) == {"data_options"}
  cropped = saved.replace(data_options=("crop=center", "fashion_dir=/data/fashion"))
  assert set(cropped.resume_conflicts(moved)) == {"data_options"}
