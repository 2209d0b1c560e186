"""jmvae_tf/models/registry.py: the objectives by name, in the order of the paper's tables, each with its
title, its options dataclass and its class (imported when asked for); importable without
TensorFlow, since the runners define their flags from it."""

import subprocess
import sys

import pytest
from tiny_runs import REPOSITORY_ROOT

from jmvae_tf.core import options
from jmvae_tf.models import registry

CLASSES = {
  "cvae": ("CVAE", options.ConditionalOptions, "CVAE"),
  "cmma": ("CMMA", options.ConditionalOptions, "CMMA"),
  "jmvae": ("JMVAE", options.ModelOptions, "JMVAE"),
  "jmvae_kl": ("JMVAE-kl", options.JMVAEKLOptions, "JMVAEKL"),
  "hierarchical_jmvae": (
    "Hierarchical JMVAE",
    options.HierarchicalJMVAEOptions,
    "HierarchicalJMVAE",
  ),
  "jmvae_kl_gan": ("JMVAE-kl + VAE-GAN", options.JMVAEKLGANOptions, "JMVAEKLGAN"),
}


def test_names_are_in_the_order_of_the_papers_tables():
  from jmvae_tf.evaluation import table

  assert registry.model_names() == tuple(CLASSES)
  assert registry.model_names()[:5] == tuple(table.TABLE1.paper) == tuple(table.TABLE2.paper)
  assert all(registry.entry(n).name == n for n in registry.model_names())


@pytest.mark.parametrize("name", list(CLASSES))
def test_each_entry_has_its_title_options_and_class(name):
  from jmvae_tf import models

  title, options_class, class_name = CLASSES[name]
  assert registry.title(name) == title
  assert registry.entry(name).options is options_class
  cls = registry.model_class(name)
  assert cls is getattr(models, class_name) and issubclass(cls, models.MultimodalVAE)


def test_an_unregistered_name_is_its_own_title_and_an_unknown_entry_lists_the_names():
  assert registry.title("my_vae") == "my_vae"
  with pytest.raises(ValueError) as refused:
    registry.entry("vae")
  assert str(refused.value) == (
    f"unknown model 'vae'; choose from {list(CLASSES)} (a plug-in's must be registered first: "
    "import the module that registers it, or pass --plugins=MODULE to a runner)"
  )
  with pytest.raises(ValueError, match="unknown model 'vae'"):
    registry.model_class("vae")


def test_the_registry_and_the_options_import_without_tensorflow():
  code = (
    "import sys\n"
    "from jmvae_tf.core import options\nfrom jmvae_tf.models import registry\n"
    "from pipelines import registry as data_registry\n"
    "assert registry.model_names() and data_registry.dataset_names()\n"
    "loaded = [m for m in ('tensorflow', 'tf_keras', 'numpy') if m in sys.modules]\n"
    "print(loaded)\n"
  )
  result = subprocess.run(
    [sys.executable, "-c", code], cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=60
  )
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "[]"
