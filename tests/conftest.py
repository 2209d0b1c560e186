"""Shared pytest fixtures.

This is the one place that knows where the real MNIST files live outside
the repository (``../shared/data/mnist``), overridable with JMVAE_MNIST_DIR.
"""

from __future__ import annotations

import os
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Decoded faces (pipelines/celeba.py's cache) go to a directory of this session, not the
# user's ~/.cache; the runners' subprocesses inherit it.
os.environ.setdefault("JMVAE_TF_CACHE_DIR", __import__("tempfile").mkdtemp(prefix="jmvae_cache_"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR_ENV = "JMVAE_MNIST_DIR"

# The test files that take longest, longest first (`--durations=60` of the README's command,
# summed by file, 2026-12-07: from about 120 s down to 20 s on 2 cores). With `--dist loadfile`
# the run ends when its last file does, and xdist's own order (most tests first) handed these
# few-test, long files out last, where one of them can leave a worker running on alone. Given
# out first, the short files fill in around them. A file missing here costs time, never a test.
LONGEST_FIRST = (
  "test_runners_evaluate.py",
  "test_celeba_end_to_end.py",
  "test_training_driver.py",
  "test_multi_worker.py",
  "test_serving_signatures.py",
  "test_runners_train.py",
  "test_training_run_dir_compat.py",
  "test_runners_figures.py",
  "test_models_jmvae_kl_gan.py",
  "test_docs_python_api.py",
  "test_plugin_end_to_end.py",
  "test_pipelines_files.py",
  "test_models_incomplete.py",
)


def pytest_configure(config):
  if hasattr(config.option, "loadscopereorder"):  # pytest-xdist: keep the order made below
    config.option.loadscopereorder = False


def pytest_collection_modifyitems(items):
  """Files in LONGEST_FIRST's order, then the rest by their number of tests (xdist's own
  order), each file's tests in their written order."""
  rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
  counts = Counter(item.path.name for item in items)
  items.sort(
    key=lambda item: (rank.get(item.path.name, len(rank)), -counts[item.path.name], str(item.path))
  )


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
