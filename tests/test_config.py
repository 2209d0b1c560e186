"""Per-model configs: each objective is configured by its own options dataclass (beside the
model), `ModelConfig` records only those, old run.json files still read, and a resume is
refused only for a difference in what the model actually uses."""

import dataclasses
import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from tiny_runs import train_tiny

from jmvae_tf import config, models, training
from jmvae_tf.modalities import GAUSSIAN_FIXED, Modality, mnist_modalities
from runners import train as train_runner

BASE = ("latent_dim", "seed", "decoder_variance")
OPTIONS = {
  "jmvae": BASE,
  "jmvae_kl": BASE + ("alpha", "anneal_alpha", "alpha_reduction"),
  "hierarchical_jmvae": BASE + ("num_layers",),
  "cvae": BASE + ("target", "condition"),
  "cmma": BASE + ("target", "condition"),
}
CLASSES = {
  "jmvae": (models.JMVAE, models.ModelOptions),
  "jmvae_kl": (models.JMVAEKL, models.JMVAEKLOptions),
  "hierarchical_jmvae": (models.HierarchicalJMVAE, models.HierarchicalJMVAEOptions),
  "cvae": (models.CVAE, models.ConditionalOptions),
  "cmma": (models.CMMA, models.ConditionalOptions),
}
# Non-default values of every option of each model, for round trips.
NON_DEFAULT = {
  "jmvae": dict(latent_dim=3, seed=5),
  "jmvae_kl": dict(latent_dim=3, seed=1, alpha=0.1, anneal_alpha=True, alpha_reduction="mean"),
  "hierarchical_jmvae": dict(latent_dim=3, num_layers=3),
  "cvae": dict(latent_dim=3, target="label", condition="image"),
  "cmma": dict(latent_dim=3, seed=2, target="label", condition="image"),
}


# --- which options each model has -----------------------------------------------------------


@pytest.mark.parametrize("model", list(OPTIONS))
def test_each_model_has_exactly_its_own_options(model):
  """option_names lists the fields of the options dataclass defined beside the model."""
  assert config.option_names(model) == OPTIONS[model]
  cls, options_cls = CLASSES[model]
  assert config.MODEL_CLASSES[model] is cls
  assert cls.options_class is options_cls
  made = config.ModelConfig.make(model)
  assert type(made.options) is options_cls
  assert set(made.as_dict()) == {"model", "dataset", "architecture", "modalities", *OPTIONS[model]}


def test_unknown_model_is_a_value_error():
  """An unknown model name is a ValueError listing the known ones."""
  with pytest.raises(ValueError, match="unknown model 'vae'.*jmvae"):
    config.option_names("vae")


@pytest.mark.parametrize(
  "model, option",
  [("jmvae", "alpha"), ("jmvae", "num_layers"), ("jmvae_kl", "target"), ("cvae", "alpha")],
)
def test_an_option_of_another_model_is_a_value_error_naming_it(model, option):
  """make refuses an option the model does not use, naming it."""
  with pytest.raises(ValueError, match=f"{model} has no option {option}"):
    config.ModelConfig.make(model, **{option: 0.1})


def test_options_of_the_wrong_class_are_refused():
  """The config's options must be its model's dataclass (not a sibling's)."""
  with pytest.raises(ValueError, match="jmvae_kl takes JMVAEKLOptions, got ModelOptions"):
    config.ModelConfig("jmvae_kl", models.ModelOptions())


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
  "model, options, field",
  [
    ("jmvae", dict(latent_dim=0), "latent_dim"),
    ("jmvae_kl", dict(latent_dim=-2), "latent_dim"),
    ("jmvae_kl", dict(alpha=-1.0), "alpha"),
    ("jmvae_kl", dict(alpha_reduction="max"), "alpha_reduction"),
    ("hierarchical_jmvae", dict(num_layers=1), "num_layers"),
    ("cvae", dict(target="image", condition="image"), "target and condition"),
    ("cmma", dict(target="label", condition="label"), "target and condition"),
  ],
)
def test_options_validate_in_their_constructors(model, options, field):
  """Each bad value is a ValueError naming the field, from the dataclass and from make."""
  with pytest.raises(ValueError, match=field):
    config.options_class(model)(**options)
  with pytest.raises(ValueError, match=field):
    config.ModelConfig.make(model, **options)


def test_models_validate_their_options_too():
  """A model built directly (not from a config) checks the same things."""
  mods = mnist_modalities()
  with pytest.raises(ValueError, match="alpha"):
    models.JMVAEKL(mods, latent_dim=2, alpha=-1.0)
  with pytest.raises(ValueError, match="num_layers"):
    models.HierarchicalJMVAE(mods, latent_dim=2, num_layers=1)
  with pytest.raises(ValueError, match="target and condition"):
    models.CVAE(mods, "label", "label", latent_dim=2)


# --- run.json -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(OPTIONS))
def test_json_round_trip(model):
  """to_json/from_json give back an equal config, non-default options included; the JSON is
  flat with only the model's options."""
  made = config.ModelConfig.make(model, **NON_DEFAULT[model])
  text = made.to_json()
  assert config.ModelConfig.from_json(text) == made
  d = json.loads(text)
  assert set(d) == {"model", "dataset", "architecture", "modalities", *OPTIONS[model]}
  assert {k: d[k] for k in NON_DEFAULT[model]} == NON_DEFAULT[model]
  assert d["dataset"] == "mnist" and d["architecture"] == "mnist_mlp"


OLD_RUN_JSON = {
  "model": "jmvae",
  "modalities": [m.to_dict() for m in mnist_modalities()],
  "latent_dim": 64,
  "architecture": "mnist_mlp",
  "seed": 0,
  "alpha": 1.0,
  "anneal_alpha": False,
  "alpha_reduction": "sum",
  "num_layers": 2,
  "target": "image",
  "condition": "label",
}


def test_old_run_json_with_every_models_options_reads_back():
  """A run.json written before options moved beside the models (flat, every model's options,
  no dataset key) reads as a config of its model with only that model's options."""
  old = config.ModelConfig.from_json(json.dumps(OLD_RUN_JSON))
  assert old == config.ModelConfig.make("jmvae")
  assert old.dataset == "mnist" and type(old.options) is models.ModelOptions
  assert old.differences(config.ModelConfig.make("jmvae")) == {}
  as_kl = config.ModelConfig.from_json(json.dumps(dict(OLD_RUN_JSON, model="jmvae_kl", alpha=0.1)))
  assert as_kl == config.ModelConfig.make("jmvae_kl", alpha=0.1)


def test_differences():
  """Same model: the differing fields; another model: only the model."""
  a = config.ModelConfig.make("jmvae_kl", alpha=1.0)
  b = config.ModelConfig.make("jmvae_kl", alpha=0.1, latent_dim=8)
  assert a.differences(b) == {"alpha": (1.0, 0.1), "latent_dim": (64, 8)}
  assert a.differences(a) == {}
  assert a.differences(config.ModelConfig.make("jmvae")) == {"model": ("jmvae_kl", "jmvae")}


# --- resuming -------------------------------------------------------------------------------


def snapshot(directory):
  """{path: (size, mtime)} of every file under directory."""
  return {
    os.path.join(root, f): (
      os.path.getsize(os.path.join(root, f)),
      os.path.getmtime(os.path.join(root, f)),
    )
    for root, _, files in os.walk(directory)
    for f in files
  }


def config_from_flags(*args):
  """runners.train's model config from flags (all models' flags are defined)."""
  fv = flags.FlagValues()
  train_runner.define_flags(fv)
  fv(["train", "--model_dir=unused", *args])
  mnist = types.SimpleNamespace(
    modalities=mnist_modalities(), architecture="mnist_mlp", name="mnist"
  )
  return train_runner.model_config_from_flags(mnist, fv)


def test_resume_of_jmvae_ignores_options_it_does_not_use(tmp_path):
  """A JMVAE run resumes with the same config, also when a flag it does not use (alpha)
  differs: that flag is not part of its config."""
  train_tiny(tmp_path, "jmvae")
  assert config.ModelConfig.from_json((tmp_path / training.RUN_FILE).read_text()) == (
    config.ModelConfig.make("jmvae", latent_dim=4)
  )
  before = snapshot(tmp_path)
  checkpoint = training.check_model_dir(
    str(tmp_path), config.ModelConfig.make("jmvae", latent_dim=4)
  )
  assert checkpoint == training.latest_checkpoint(str(tmp_path)) and checkpoint.endswith("ckpt-1")
  with_alpha = config_from_flags("--model=jmvae", "--latent_dim=4", "--alpha=0.1")
  assert with_alpha == config.ModelConfig.make("jmvae", latent_dim=4)
  assert training.check_model_dir(str(tmp_path), with_alpha) == checkpoint
  # another model, or another latent size, is refused naming only what differs
  with pytest.raises(training.RunDirError) as refused:
    training.check_model_dir(str(tmp_path), config.ModelConfig.make("jmvae_kl", latent_dim=4))
  message = str(refused.value)
  assert "(--model 'jmvae' vs 'jmvae_kl'; saved vs asked)" in message
  assert "alpha" not in message and "latent_dim" not in message
  with pytest.raises(training.RunDirError, match="--latent_dim 4 vs 8;"):
    training.check_model_dir(str(tmp_path), config.ModelConfig.make("jmvae", latent_dim=8))
  assert snapshot(tmp_path) == before


def test_resume_of_jmvae_kl_is_refused_for_another_alpha(tmp_path):
  """JMVAE-kl uses alpha: a run with alpha 1 is not resumed with alpha 0.1 (and the directory
  is left as it was), but is with alpha 1."""
  train_tiny(tmp_path, "jmvae_kl", alpha=1.0)
  before = snapshot(tmp_path)
  asked = config_from_flags("--model=jmvae_kl", "--latent_dim=4", "--alpha=0.1")
  with pytest.raises(training.RunDirError) as refused:
    training.check_model_dir(str(tmp_path), asked)
  message = str(refused.value)
  assert "--alpha 1.0 vs 0.1" in message and "different model" in message
  assert "latent_dim" not in message and "--model " not in message
  same = config.ModelConfig.make("jmvae_kl", latent_dim=4, alpha=1.0)
  assert training.check_model_dir(str(tmp_path), same).endswith("ckpt-1")
  assert snapshot(tmp_path) == before


def test_check_model_dir_of_a_fresh_directory(tmp_path):
  """No checkpoint: nothing to resume, any config is accepted; a file is not a directory."""
  made = config.ModelConfig.make("jmvae", latent_dim=4)
  assert training.check_model_dir(str(tmp_path / "new"), made) is None
  (tmp_path / "file").write_text("x")
  with pytest.raises(training.RunDirError, match="not a directory"):
    training.check_model_dir(str(tmp_path / "file"), made)


# --- building -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(OPTIONS))
def test_build_model_uses_the_configs_options(model):
  """build_model gives the model's class with every option of the config."""
  made = config.ModelConfig.make(model, **NON_DEFAULT[model])
  built = config.build_model(made)
  assert type(built) is CLASSES[model][0]
  for name, value in dataclasses.asdict(made.options).items():
    if name != "decoder_variance":  # the decoders' likelihood, not a model attribute (below)
      assert getattr(built, name) == value, name
  assert built.variables  # every variable created


def test_decoder_variance_reaches_the_likelihood_of_a_built_model():
  """decoder_variance=v makes log p(x|z) of the fixed-variance decoders
  -d/2 log(2 pi v) - sum (x - mean)^2 / (2v), i.e. -d/2 log v - (1/v - 1) sum (x - mean)^2 / 2
  from the paper's variance 1, for a model built from its config (what training and
  evaluation both decode with); the means are unchanged."""
  mods = (Modality("image", GAUSSIAN_FIXED, (16, 16, 3)), Modality("tags", GAUSSIAN_FIXED, (5,)))
  kwargs = dict(modalities=mods, architecture="celeba_conv", dataset="faces", latent_dim=4)
  paper = config.build_model(config.ModelConfig.make("jmvae", **kwargs))
  sharp = config.build_model(config.ModelConfig.make("jmvae", decoder_variance=0.05, **kwargs))
  sharp.set_weights(paper.get_weights())
  z = tf.random.stateless_normal([3, 4], seed=[1, 2])
  batch = {
    "image": tf.random.stateless_uniform([3, 16, 16, 3], [3, 4], -1.0, 1.0),
    "tags": tf.sign(tf.random.stateless_normal([3, 5], seed=[5, 6])),
  }
  for name in ("image", "tags"):
    p, s = paper.decode(z, batch)[name], sharp.decode(z, batch)[name]
    np.testing.assert_allclose(s.mean().numpy(), p.mean().numpy())
    sq = np.sum(np.square(batch[name].numpy() - p.mean().numpy()).reshape(3, -1), axis=1)
    d = np.prod(batch[name].shape[1:])
    by_hand = -d / 2 * np.log(2 * np.pi * 0.05) - sq / (2 * 0.05)
    np.testing.assert_allclose(s.log_prob(batch[name]).numpy(), by_hand, rtol=1e-5)
    np.testing.assert_allclose(
      p.log_prob(batch[name]).numpy(),
      by_hand + d / 2 * np.log(0.05) + (1 / 0.05 - 1) * sq / 2,
      rtol=1e-5,
    )


def test_decoder_variance_without_a_fixed_variance_modality_is_refused():
  """MNIST's Bernoulli and categorical likelihoods have no variance to set."""
  with pytest.raises(ValueError, match="decoder_variance=0.1 has no effect on mnist"):
    config.ModelConfig.make("jmvae", decoder_variance=0.1)
  with pytest.raises(ValueError, match="decoder_variance must be positive"):
    config.ModelConfig.make("jmvae", decoder_variance=0.0)
