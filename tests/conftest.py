"""Shared pytest fixtures.

This is the one place that knows where the real MNIST files live outside
the repository (``../shared/data/mnist``), overridable with JMVAE_MNIST_DIR.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
