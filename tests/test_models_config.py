"""Per-model configs: each objective is configured by its own options dataclass (beside the
model), `ModelConfig` records only those, old run.json files still read, and a resume is
refused only for a difference in what the model actually uses."""

import json
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from model_configs import mnist_config

from jmvae_tf import models
from jmvae_tf.core import options
from jmvae_tf.core.likelihoods import GAUSSIAN_FIXED
from jmvae_tf.core.modalities import Modality
from jmvae_tf.models import config, registry
from pipelines.mnist import mnist_modalities

BASE = ("latent_dim", "seed", "decoder_variance", "incomplete_weighting")
OPTIONS = {
  "jmvae": BASE,
  "jmvae_kl": BASE + ("alpha", "anneal_alpha", "alpha_reduction"),
  "hierarchical_jmvae": BASE + ("num_layers",),
  "cvae": BASE + ("target", "condition"),
  "cmma": BASE + ("target", "condition"),
}
CLASSES = {
  "jmvae": (models.JMVAE, options.ModelOptions),
  "jmvae_kl": (models.JMVAEKL, options.JMVAEKLOptions),
  "hierarchical_jmvae": (models.HierarchicalJMVAE, options.HierarchicalJMVAEOptions),
  "cvae": (models.CVAE, options.ConditionalOptions),
  "cmma": (models.CMMA, options.ConditionalOptions),
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
  """option_names lists the fields of the model's options dataclass; the config holds those
  options, and the model built from it keeps them."""
  assert config.option_names(model) == OPTIONS[model]
  cls, options_cls = CLASSES[model]
  made = mnist_config(model)
  assert type(made.options) is options_cls
  assert set(made.as_dict()) == {"model", "dataset", "architecture", "modalities", *OPTIONS[model]}
  built = config.build_model(made)
  assert type(built) is cls and built.options == made.options


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
    mnist_config(model, **{option: 0.1})


def test_options_of_the_wrong_class_are_refused():
  """The config's options must be its model's dataclass (not a sibling's)."""
  with pytest.raises(ValueError, match="jmvae_kl takes JMVAEKLOptions, got ModelOptions"):
    config.ModelConfig("jmvae_kl", options.ModelOptions(), mnist_modalities(), "mnist_mlp", "mnist")


def test_conditional_defaults_are_the_data_sets_first_given_its_second():
  """CVAE/CMMA without --target/--condition generate the data set's first modality given its
  second; the config records the names."""
  assert mnist_config("cvae").options.target == "image"
  assert mnist_config("cvae").options.condition == "label"
  assert mnist_config("cmma", target="label").options.condition == "image"


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
  "model, values, field",
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
def test_options_validate_in_their_constructors(model, values, field):
  """Each bad value is a ValueError naming the field, from the dataclass and from make."""
  with pytest.raises(ValueError, match=field):
    registry.entry(model).options(**values)
  with pytest.raises(ValueError, match=field):
    mnist_config(model, **values)


def test_models_take_their_options_object():
  """A model built directly (not from a config) takes an options object, and a conditional
  model's modalities must be among the data set's."""
  mods = mnist_modalities()
  with pytest.raises(TypeError, match="ModelOptions"):
    models.JMVAEKL(mods, {"latent_dim": 2, "alpha": -1.0})
  with pytest.raises(ValueError, match="no modality named 'text'"):
    models.CVAE(mods, options.ConditionalOptions(target="text"))


# --- run.json -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(OPTIONS))
def test_json_round_trip(model):
  """to_json/from_json give back an equal config, non-default options included; the JSON is
  flat with only the model's options."""
  made = mnist_config(model, **NON_DEFAULT[model])
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
  assert old == mnist_config("jmvae")
  assert old.dataset == "mnist" and type(old.options) is options.ModelOptions
  assert old.differences(mnist_config("jmvae")) == {}
  as_kl = config.ModelConfig.from_json(json.dumps(dict(OLD_RUN_JSON, model="jmvae_kl", alpha=0.1)))
  assert as_kl == mnist_config("jmvae_kl", alpha=0.1)


def test_a_run_json_from_before_families_reads_with_the_networks_it_was_trained_with():
  """A modality of a run.json written before modalities had families gets the family whose
  networks the code that wrote it built: convolutions for [height, width, channels], an MLP
  for any other shape; the project's data sets declare the same families today."""
  faces = {
    "model": "jmvae_kl",
    "dataset": "celeb_a",
    "architecture": "celeba_conv",
    "modalities": [
      {"name": "image", "kind": "gaussian_fixed", "shape": [64, 64, 3]},
      {"name": "attributes", "kind": "gaussian_fixed", "shape": [40]},
    ],
    **{k: v for k, v in OLD_RUN_JSON.items() if k not in ("model", "modalities")},
  }
  read = config.ModelConfig.from_json(json.dumps(faces))
  assert [(m.name, m.family) for m in read.modalities] == [
    ("image", "image"),
    ("attributes", "vector"),
  ]
  assert config.ModelConfig.from_json(json.dumps(OLD_RUN_JSON)).modalities[0].family == "image"
  other = dict(
    faces,
    modalities=[
      {"name": "pic", "kind": "bernoulli", "shape": [8, 8, 1]},
      {"name": "bits", "kind": "bernoulli", "shape": [2, 3]},
    ],
  )
  read = config.ModelConfig.from_json(json.dumps(other))
  assert [m.family for m in read.modalities] == ["image", "vector"]
  from pipelines.mnist_fashion import MnistFashionDataSet

  # The data sets' own declarations (the class: no captions, no files read).
  three = object.__new__(MnistFashionDataSet).modalities
  for m in tuple(mnist_modalities()) + three:
    assert config.legacy_family(m.shape) == m.family, m


def test_a_config_of_the_projects_own_names_records_no_plugins():
  made = mnist_config("jmvae_kl")
  assert made.plugins() == {} and "plugins" not in json.loads(made.to_json())


def test_run_json_names_the_plugins_its_names_need_and_reading_it_imports_them(monkeypatch):
  """A model on a likelihood kind and a family a plug-in registers: run.json lists the
  plug-in's module; reading it in a process where the plug-in is gone imports it again."""
  from jmvae_tf.core import likelihoods, modalities

  module = "plugin_for_the_config_test"

  def register():
    plugin = types.ModuleType(module)
    monkeypatch.setitem(sys.modules, module, plugin)
    bits = type("Bits", (type(likelihoods.BERNOULLI),), {"kind": "test_bits"})()
    likelihoods.LIKELIHOODS.register("test_bits", bits, module, replace=True)
    modalities.FAMILIES.register(
      "test_pixels", modalities.Family("test_pixels", "pixels"), module, replace=True
    )

  register()
  made = config.ModelConfig.make(
    "jmvae",
    (Modality("x", "test_bits", (4,), "test_pixels"), Modality("w", "categorical", (3,))),
    "mnist_mlp",
    "toy",
  )
  text = made.to_json()
  assert json.loads(text)["plugins"] == {
    module: ["likelihood kind test_bits", "network family test_pixels"]
  }
  for registry_, name in (
    (likelihoods.LIKELIHOODS, "test_bits"),
    (modalities.FAMILIES, "test_pixels"),
  ):
    del registry_._things[name], registry_._modules[name]  # as in a new process
  monkeypatch.delitem(sys.modules, module)
  with pytest.raises(ValueError, match=f"run.json needs the plug-in module '{module}'"):
    config.ModelConfig.from_json(text)
  imported = []
  monkeypatch.setattr("importlib.import_module", lambda name: imported.append(name) or register())
  assert config.ModelConfig.from_json(text) == made
  assert imported == [module]


def test_differences():
  """Same model: the differing fields; another model: only the model."""
  a = mnist_config("jmvae_kl", alpha=1.0)
  b = mnist_config("jmvae_kl", alpha=0.1, latent_dim=8)
  assert a.differences(b) == {"alpha": (1.0, 0.1), "latent_dim": (64, 8)}
  assert a.differences(a) == {}
  assert a.differences(mnist_config("jmvae")) == {"model": ("jmvae_kl", "jmvae")}


# --- building -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(OPTIONS))
def test_build_model_uses_the_configs_options(model):
  """build_model gives the model's class with every option of the config."""
  made = mnist_config(model, **NON_DEFAULT[model])
  built = config.build_model(made)
  assert type(built) is CLASSES[model][0]
  assert built.options == made.options
  assert (built.latent_dim, built.seed) == (made.latent_dim, made.seed)
  assert built.variables  # every variable created


def test_decoder_variance_reaches_the_likelihood_of_a_built_model():
  """decoder_variance=v makes log p(x|z) of the fixed-variance decoders
  -d/2 log(2 pi v) - sum (x - mean)^2 / (2v), i.e. -d/2 log v - (1/v - 1) sum (x - mean)^2 / 2
  from the paper's variance 1, for a model built from its config (what training and
  evaluation both decode with); the means are unchanged."""
  mods = (
    Modality("image", GAUSSIAN_FIXED, (16, 16, 3), "image"),
    Modality("tags", GAUSSIAN_FIXED, (5,), "vector"),
  )
  make = lambda **kw: config.ModelConfig.make("jmvae", mods, "celeba_conv", "faces", **kw)
  paper = config.build_model(make(latent_dim=4))
  sharp = config.build_model(make(latent_dim=4, decoder_variance=0.05))
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
    mnist_config("jmvae", decoder_variance=0.1)
  with pytest.raises(ValueError, match="decoder_variance must be positive"):
    mnist_config("jmvae", decoder_variance=0.0)


@pytest.mark.parametrize("key", ["latnet_dim", "architcture"])
def test_a_mistyped_key_in_run_json_is_refused_naming_it(key):
  """Issue 30: `"latnet_dim": 2` was ignored; another model's option (run.json once held every
  model's) is still read."""
  d = json.loads(mnist_config("jmvae_kl").to_json())
  with pytest.raises(ValueError, match=f"unknown key '{key}'"):
    config.ModelConfig.from_json(json.dumps({**d, key: 2}))
  again = config.ModelConfig.from_json(json.dumps({**d, "num_layers": 2}))
  assert again.model == "jmvae_kl"
