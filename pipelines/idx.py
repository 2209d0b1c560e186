"""Strict reader for IDX files (the format MNIST ships in), plain or gzipped.

Why our own reader: it needs no pickles and no network, and it refuses
anything that does not match its header exactly, so a truncated download or
a file with junk appended fails loudly instead of silently training on
garbage.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Union

import numpy as np

PathLike = Union[str, os.PathLike]

# IDX type code -> big-endian numpy dtype of the stored values.
IDX_DTYPES: dict[int, np.dtype] = {
  0x08: np.dtype(">u1"),
  0x09: np.dtype(">i1"),
  0x0B: np.dtype(">i2"),
  0x0C: np.dtype(">i4"),
  0x0D: np.dtype(">f4"),
  0x0E: np.dtype(">f8"),
}

_MAGIC_LENGTH = 4  # two zero bytes, type code, number of dimensions
_DIM_LENGTH = 4  # each dimension is a big-endian uint32


class IdxError(ValueError):
  """An IDX file is missing, unreadable or does not match its own header."""


def read_idx(path: PathLike) -> np.ndarray:
  """Reads an IDX file (``.gz`` => gzip) into a native-byte-order array.

  Raises IdxError, with a one-line message naming the file, when the file
  is missing, not a valid gzip stream, has a bad magic number or unknown
  type code, or holds fewer or more data bytes than its dimensions say.
  """
  path = Path(path)
  raw = _read_bytes(path)
  return _parse_idx(raw, path)


def _read_bytes(path: Path) -> bytes:
  """Returns the (decompressed) content; gzip is chosen by the .gz suffix."""
  if not path.is_file():
    raise IdxError(f"{path}: IDX file not found")
  try:
    if path.suffix == ".gz":
      with gzip.open(path, "rb") as stream:
        return stream.read()
    return path.read_bytes()
  except (gzip.BadGzipFile, EOFError, zlib.error) as error:
    raise IdxError(f"{path}: corrupt or truncated gzip stream ({error})") from error
  except OSError as error:
    raise IdxError(f"{path}: cannot read file ({error})") from error


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
  """Checks header and size against each other, then decodes the values."""
  if len(raw) < _MAGIC_LENGTH:
    raise IdxError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
  zero0, zero1, type_code, ndim = raw[:_MAGIC_LENGTH]
  if zero0 != 0 or zero1 != 0:
    raise IdxError(
      f"{path}: bad IDX magic {raw[:_MAGIC_LENGTH].hex()} (first two bytes must be zero)"
    )
  if type_code not in IDX_DTYPES:
    raise IdxError(f"{path}: unknown IDX type code 0x{type_code:02X}")
  if ndim == 0:
    raise IdxError(f"{path}: IDX header declares zero dimensions")

  header_length = _MAGIC_LENGTH + _DIM_LENGTH * ndim
  if len(raw) < header_length:
    raise IdxError(
      f"{path}: truncated header ({len(raw)} bytes, {ndim} dimensions need {header_length})"
    )
  dims = tuple(
    int.from_bytes(raw[offset : offset + _DIM_LENGTH], "big")
    for offset in range(_MAGIC_LENGTH, header_length, _DIM_LENGTH)
  )

  dtype = IDX_DTYPES[type_code]
  expected_data_length = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
  actual_data_length = len(raw) - header_length
  if actual_data_length < expected_data_length:
    raise IdxError(
      f"{path}: truncated data ({actual_data_length} bytes, dimensions "
      f"{dims} need {expected_data_length})"
    )
  if actual_data_length > expected_data_length:
    raise IdxError(
      f"{path}: {actual_data_length - expected_data_length} trailing bytes "
      f"after the data for dimensions {dims}"
    )

  values = np.frombuffer(raw, dtype=dtype, offset=header_length)
  # astype copies into a writable array in the machine's byte order.
  return values.astype(dtype.newbyteorder("="), copy=True).reshape(dims)
