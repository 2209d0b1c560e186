"""Test helpers: small MNIST-format directories and models trained for a few steps,
saved the way runners.train saves them, for the tests of the runners that read them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from idx_writer import write_idx
from model_configs import mnist_config
from stream_data import StreamData

from jmvae_tf.core import options
from jmvae_tf.models import config as config_lib
from jmvae_tf.training import driver
from pipelines import mnist

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


def run_module(module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
  """`python -m module args` from the repository root, as a user runs a runner; TensorFlow's
  C++ logging quiet, output captured as text."""
  return subprocess.run(
    [sys.executable, "-m", module, *args],
    cwd=REPOSITORY_ROOT,
    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def write_fake_mnist(directory: Path, num_train: int, num_test: int, seed: int = 0) -> Path:
  """The four IDX files of random digits, so tests that need a data_dir never skip."""
  rng = np.random.default_rng(seed)
  for role, n in (("train", num_train), ("test", num_test)):
    write_idx(
      directory / mnist.IDX_FILES[f"{role}_images"],
      rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
    )
    write_idx(
      directory / mnist.IDX_FILES[f"{role}_labels"], rng.integers(0, 10, n).astype(np.uint8)
    )
  return directory


def train_tiny(
  model_dir: Path,
  model: str,
  latent_dim: int = 4,
  steps: int = 2,
  batch_size: int = 8,
  **model_kwargs,
) -> config_lib.ModelConfig:
  """A few training steps on random binary data, saved like runners.train saves a run."""
  model_config = mnist_config(model, latent_dim=latent_dim, **model_kwargs)
  train_config = options.TrainConfig.make(
    epochs=1, batch_size=batch_size, warmup_epochs=0, steps_per_execution=1, strategy="default"
  )
  rng = np.random.default_rng(0)
  n = 4 * batch_size
  data = {
    "image": (rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32),
    "label": np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)],
  }
  stream = StreamData(
    model_config.modalities,
    lambda start: (
      tf.data.Dataset.from_tensor_slices(data).repeat().batch(batch_size, drop_remainder=True)
    ),
    steps,
  )
  driver.train(model_config, stream, str(model_dir), train_config, verbose=0)
  return model_config


# Runs of the MNIST runners' tests: name -> the model and its options.
MNIST_RUNS = {
  "jmvae": {"model": "jmvae"},
  "jmvae_kl": {"model": "jmvae_kl"},
  "hierarchical_jmvae": {"model": "hierarchical_jmvae"},
  "cvae_image": {"model": "cvae", "target": "image", "condition": "label"},
  "cvae_label": {"model": "cvae", "target": "label", "condition": "image"},
}


def train_mnist_runs(root: Path, names=tuple(MNIST_RUNS)) -> dict:
  """{name: model_dir} of the MNIST_RUNS `names`, each trained a few steps (latent_dim 2,
  batches of 50) in root/name."""
  for name in names:
    train_tiny(root / name, latent_dim=2, batch_size=50, **MNIST_RUNS[name])
  return {name: root / name for name in names}


def read_only_dir(tmp_path):
  """A directory this process cannot write: a chmod 555 one, or for root (whom modes do
  not stop) /proc/sys, which the kernel keeps read-only."""
  directory = tmp_path / "read_only"
  directory.mkdir()
  directory.chmod(0o555)
  if not os.access(directory, os.W_OK):
    return directory
  if os.path.isdir("/proc/sys") and not os.access("/proc/sys", os.W_OK):
    return Path("/proc/sys")
  pytest.skip("no directory this user cannot write")
