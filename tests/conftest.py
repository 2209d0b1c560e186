"""Shared pytest fixtures.

This is the one place that knows where the real MNIST files live outside
the repository (``../shared/data/mnist``), overridable with JMVAE_MNIST_DIR.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Decoded faces (pipelines/celeba.py's cache) go to a directory of this session, not the
# user's ~/.cache; the runners' subprocesses inherit it.
os.environ.setdefault("JMVAE_TF_CACHE_DIR", __import__("tempfile").mkdtemp(prefix="jmvae_cache_"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR_ENV = "JMVAE_MNIST_DIR"


def _real_mnist_dir() -> Path:
  configured = os.environ.get(MNIST_DIR_ENV)
  if configured:
    return Path(configured)
  return REPOSITORY_ROOT.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
  """Directory with the four genuine MNIST IDX files, or skip the test."""
  directory = _real_mnist_dir()
  if not directory.is_dir():
    pytest.skip(f"real MNIST not found at {directory}: set {MNIST_DIR_ENV}")
  return directory


@pytest.fixture(scope="session")
def mnist_arrays(mnist_dir: Path):
  """The real MNIST arrays, read once per session (~0.3 s)."""
  from pipelines.mnist import load_idx_dir

  return load_idx_dir(mnist_dir)


def _two_logical_cpus():
  """Splits the CPU into two logical devices so tests can run a real two-replica
  MirroredStrategy; must happen before TensorFlow initialises its devices."""
  import tensorflow as tf

  cpus = tf.config.list_physical_devices("CPU")
  try:
    tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
  except RuntimeError:  # already initialised by an earlier import: tests needing two skip
    pass


def _quietly(fn):
  """Runs fn with this process's stderr set aside: TensorFlow's native libraries log while
  they load and find no GPU, before any log level applies, and under pytest-xdist a
  worker's stderr reaches the terminal. Shown if fn fails."""
  from jmvae_tf.core.files import stderr_set_aside

  with stderr_set_aside():
    fn()


_quietly(_two_logical_cpus)


@pytest.fixture(scope="session")
def mnist_slice(mnist_arrays):
  """A small slice of the real data: 1,000 training and 500 test images."""
  from pipelines.mnist import LabelledImages

  return (
    LabelledImages(mnist_arrays.train_images[:1000], mnist_arrays.train_labels[:1000]),
    LabelledImages(mnist_arrays.test_images[:500], mnist_arrays.test_labels[:500]),
  )
