"""Tests for pipelines.idx: the real MNIST files, round trips, corrupt files."""

from __future__ import annotations

import gzip
import hashlib
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from idx_writer import idx_bytes, write_idx

from pipelines.idx import IdxError, read_idx

TRAIN_LABELS_SHA256 = "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
# Published per-class counts of the genuine MNIST training and test sets.
TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ----------------------------------------------------------------- real files


def test_real_train_labels_file_is_genuine(mnist_dir: Path) -> None:
  unpacked = gzip.decompress((mnist_dir / "train-labels-idx1-ubyte.gz").read_bytes())
  assert hashlib.sha256(unpacked).hexdigest() == TRAIN_LABELS_SHA256


def test_real_files_have_mnist_shapes_and_class_counts(mnist_dir: Path) -> None:
  train_images = read_idx(mnist_dir / "train-images-idx3-ubyte.gz")
  train_labels = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
  test_images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")
  test_labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")

  assert train_images.shape == (60000, 28, 28) and train_images.dtype == np.uint8
  assert test_images.shape == (10000, 28, 28) and test_images.dtype == np.uint8
  assert train_labels.shape == (60000,) and test_labels.shape == (10000,)
  assert np.bincount(train_labels, minlength=10).tolist() == TRAIN_CLASS_COUNTS
  assert np.bincount(test_labels, minlength=10).tolist() == TEST_CLASS_COUNTS
  assert sum(TRAIN_CLASS_COUNTS) == 60000 and sum(TEST_CLASS_COUNTS) == 10000
  assert train_images.max() == 255 and train_images.min() == 0


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", ["small.idx", "small.idx.gz"])
@pytest.mark.parametrize(
  "array",
  [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.linspace(-1.5, 2.5, 10, dtype=np.float32).reshape(5, 2),
    np.array([-7, 0, 300, -32768], dtype=np.int16),
    np.array([[1.0e-300, -2.0]], dtype=np.float64),
  ],
  ids=["uint8", "float32", "int16", "float64"],
)
def test_round_trip(tmp_path: Path, name: str, array: np.ndarray) -> None:
  result = read_idx(write_idx(tmp_path / name, array))
  assert result.dtype == array.dtype
  assert result.dtype.isnative
  np.testing.assert_array_equal(result, array)
  result[...] = 0  # The result is a writable copy, not a view of the file.


# ------------------------------------------------------------- corrupt files


def _assert_idx_error_names_file(path: Path, fragment: str) -> None:
  with pytest.raises(IdxError) as caught:
    read_idx(path)
  message = str(caught.value)
  assert str(path) in message
  assert fragment in message
  assert "\n" not in message


def _valid_content() -> bytes:
  return idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


def test_missing_file(tmp_path: Path) -> None:
  _assert_idx_error_names_file(tmp_path / "absent-idx1-ubyte.gz", "not found")


def test_bad_magic(tmp_path: Path) -> None:
  path = tmp_path / "bad-magic.idx"
  path.write_bytes(b"\x01\x00" + _valid_content()[2:])
  _assert_idx_error_names_file(path, "magic")


def test_unknown_type_code(tmp_path: Path) -> None:
  path = tmp_path / "bad-type.idx"
  content = bytearray(_valid_content())
  content[2] = 0x0A
  path.write_bytes(bytes(content))
  _assert_idx_error_names_file(path, "type code 0x0A")


def test_truncated_data(tmp_path: Path) -> None:
  path = tmp_path / "truncated.idx"
  path.write_bytes(_valid_content()[:-1])
  _assert_idx_error_names_file(path, "truncated data")


def test_truncated_header(tmp_path: Path) -> None:
  path = tmp_path / "short-header.idx"
  path.write_bytes(_valid_content()[:9])
  _assert_idx_error_names_file(path, "truncated header")


def test_trailing_bytes(tmp_path: Path) -> None:
  path = tmp_path / "trailing.idx.gz"
  path.write_bytes(gzip.compress(_valid_content() + b"\x00\x00"))
  _assert_idx_error_names_file(path, "2 trailing bytes")


def test_truncated_gzip(tmp_path: Path) -> None:
  path = tmp_path / "cut.idx.gz"
  compressed = gzip.compress(_valid_content())
  path.write_bytes(compressed[: len(compressed) // 2])
  _assert_idx_error_names_file(path, "gzip")


def test_not_gzip_but_named_gz(tmp_path: Path) -> None:
  path = tmp_path / "plain.idx.gz"
  path.write_bytes(_valid_content())
  _assert_idx_error_names_file(path, "gzip")


def test_corrupt_gzip_body(tmp_path: Path) -> None:
  path = tmp_path / "flipped.idx.gz"
  compressed = bytearray(gzip.compress(idx_bytes(np.arange(4096, dtype=np.int32))))
  for offset in range(12, len(compressed) - 8):
    compressed[offset] ^= 0xFF
  path.write_bytes(bytes(compressed))
  _assert_idx_error_names_file(path, "gzip")


def test_a_gzip_bomb_is_refused_without_unpacking_it(tmp_path: Path) -> None:
  """A small valid file followed by 256 MB of zeros (256 KB gzipped): refused after reading
  at most about 1 MiB past the declared data, never the whole stream into memory."""
  path = tmp_path / "bomb-idx1-ubyte.gz"
  with gzip.open(path, "wb", compresslevel=1) as bomb:
    bomb.write(idx_bytes(np.arange(10, dtype=np.uint8)))
    for _ in range(256):
      bomb.write(bytes(1 << 20))
  assert path.stat().st_size < 2 << 20
  tracemalloc.start()
  try:
    with pytest.raises(IdxError, match="bomb-idx1-ubyte.gz.*trailing bytes"):
      read_idx(path)
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert peak < 16 << 20, f"peak {peak / 2**20:.0f} MiB while refusing a 256 MB stream"
