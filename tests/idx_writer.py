"""Test helper: writes small IDX files (the inverse of pipelines.idx.read_idx)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from pipelines.idx import IDX_DTYPES


def idx_bytes(array: np.ndarray) -> bytes:
  """Encodes an array as IDX: magic, big-endian uint32 dims, big-endian data."""
  codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
  code = codes[array.dtype.newbyteorder("=")]
  header = bytes([0, 0, code, array.ndim]) + b"".join(
    int(dim).to_bytes(4, "big") for dim in array.shape
  )
  big_endian = array.astype(array.dtype.newbyteorder(">"), copy=False)
  return header + big_endian.tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
  """Writes ``array`` to ``path``, gzipped when the name ends in .gz."""
  content = idx_bytes(array)
  path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
  return path
