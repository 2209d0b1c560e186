"""Strict reader for IDX files (the format MNIST ships in), plain or gzipped.

Why our own reader: it needs no pickles and no network, and it refuses
anything that does not match its header exactly, so a truncated download or
a file with junk appended fails loudly instead of silently training on
garbage.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO, Union

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
# A file declaring more data than this is refused before its data are read: twice the largest
# IDX file known (EMNIST ByClass's training images, 547 MB), so a small gzip bomb with a
# huge header cannot take the memory.
MAX_DATA_BYTES = 1 << 30
_CHUNK = 1 << 20  # bytes read at a time
# Trailing bytes are counted up to this many and no further, so a bomb of trailing zeros
# costs neither time nor memory.
_MAX_TRAILING_COUNTED = 1 << 20


class IdxError(ValueError):
  """An IDX file is missing, unreadable or does not match its own header."""


def read_idx(path: PathLike) -> np.ndarray:
  """Reads an IDX file (``.gz`` => gzip) into a native-byte-order array.

  Raises IdxError, with a one-line message naming the file, when the file
  is missing, not a valid gzip stream, has a bad magic number or unknown
  type code, declares more than MAX_DATA_BYTES of data, or holds fewer or
  more data bytes than its dimensions say. The stream is read as far as the
  header says and a little beyond (to see trailing bytes), never whole: memory
  stays at the size of the data the header declares.
  """
  path = Path(path)
  if not path.is_file():
    raise IdxError(f"{path}: IDX file not found")
  try:
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as stream:
      return _read_stream(stream, path)
  except (gzip.BadGzipFile, EOFError, zlib.error) as error:
    raise IdxError(f"{path}: corrupt or truncated gzip stream ({error})") from error
  except OSError as error:
    raise IdxError(f"{path}: cannot read file ({error})") from error


def _read_up_to(stream: BinaryIO, size: int) -> bytearray:
  """`size` bytes from `stream`, or all that is left if fewer, read in chunks (a header's
  size is not trusted with one allocation)."""
  data = bytearray()
  while len(data) < size:
    chunk = stream.read(min(_CHUNK, size - len(data)))
    if not chunk:
      break
    data += chunk
  return data


def _read_stream(stream: BinaryIO, path: Path) -> np.ndarray:
  """Checks the header, then reads exactly the data it declares, then checks that nothing
  follows; decodes the values."""
  magic = _read_up_to(stream, _MAGIC_LENGTH)
  if len(magic) < _MAGIC_LENGTH:
    raise IdxError(f"{path}: too short for an IDX header ({len(magic)} bytes)")
  zero0, zero1, type_code, ndim = magic
  if zero0 != 0 or zero1 != 0:
    raise IdxError(f"{path}: bad IDX magic {bytes(magic).hex()} (first two bytes must be zero)")
  if type_code not in IDX_DTYPES:
    raise IdxError(f"{path}: unknown IDX type code 0x{type_code:02X}")
  if ndim == 0:
    raise IdxError(f"{path}: IDX header declares zero dimensions")

  header_length = _MAGIC_LENGTH + _DIM_LENGTH * ndim
  dims_raw = _read_up_to(stream, _DIM_LENGTH * ndim)
  if len(dims_raw) < _DIM_LENGTH * ndim:
    raise IdxError(
      f"{path}: truncated header ({_MAGIC_LENGTH + len(dims_raw)} bytes, {ndim} dimensions "
      f"need {header_length})"
    )
  dims = tuple(
    int.from_bytes(dims_raw[offset : offset + _DIM_LENGTH], "big")
    for offset in range(0, len(dims_raw), _DIM_LENGTH)
  )

  dtype = IDX_DTYPES[type_code]
  expected_data_length = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
  if expected_data_length > MAX_DATA_BYTES:
    raise IdxError(
      f"{path}: dimensions {dims} declare {expected_data_length} bytes of data, more than the "
      f"{MAX_DATA_BYTES} this reader accepts"
    )
  data = _read_up_to(stream, expected_data_length)
  if len(data) < expected_data_length:
    raise IdxError(
      f"{path}: truncated data ({len(data)} bytes, dimensions {dims} need {expected_data_length})"
    )
  trailing = 0
  while trailing <= _MAX_TRAILING_COUNTED:
    chunk = stream.read(_CHUNK)
    if not chunk:
      break
    trailing += len(chunk)
  if trailing:
    count = trailing if trailing <= _MAX_TRAILING_COUNTED else f"more than {_MAX_TRAILING_COUNTED}"
    raise IdxError(f"{path}: {count} trailing bytes after the data for dimensions {dims}")

  values = np.frombuffer(data, dtype=dtype).reshape(dims)
  # In the machine's byte order, writable; one byte values need no copy.
  return values if dtype.itemsize == 1 else values.astype(dtype.newbyteorder("="), copy=True)
