"""jmvae_tf/__init__.py: the public API. Every name in __all__ is there, documented in its own
docstring and listed in the package's; importing the package (and what the runners read
before their flags) starts no TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tiny_runs import REPOSITORY_ROOT

import jmvae_tf


@pytest.mark.parametrize("name", jmvae_tf.__all__)
def test_each_public_name_is_there_and_documented(name):
  value = getattr(jmvae_tf, name)
  assert (value.__doc__ or "").strip(), f"{name} has no docstring"
  assert name in jmvae_tf.__doc__, f"{name} is not in jmvae_tf's docstring"
  assert name in dir(jmvae_tf)


def test_the_api_covers_a_researchers_day():
  day = {
    "Modality",  # declare modalities
    "make_model",  # choose a model and its options
    "train",  # train on arrays, a tf.data pipeline or a data set, with the warm-up
    "MultimodalVAE",  # posterior / generated_mean from any subset
    "evaluate",  # log-likelihoods and coherence
    "export",  # a SavedModel
    "load",  # a trained run back
    "register_likelihood",  # and the plug-in points
    "register_family_networks",
    "register_architecture",
    "register_model",
  }
  assert day <= set(jmvae_tf.__all__)
  with pytest.raises(AttributeError, match="module 'jmvae_tf' has no attribute 'nothing'"):
    jmvae_tf.nothing  # noqa: B018


def test_importing_the_package_and_what_runners_read_first_starts_no_tensorflow():
  code = (
    "import sys\n"
    "import jmvae_tf\n"
    "from jmvae_tf.core import options, plugins\n"
    "from jmvae_tf.models import registry\n"
    "from pipelines import registry as data_registry\n"
    "assert jmvae_tf.__version__ and registry.model_names() and data_registry.dataset_names()\n"
    "print([m for m in ('tensorflow', 'tf_keras', 'numpy') if m in sys.modules])\n"
  )
  done = subprocess.run(
    [sys.executable, "-c", code], cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=60
  )
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip() == "[]"
