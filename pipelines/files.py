"""`--dataset=files`: users' paired data from files, described by a small JSON spec.

`--data_dir=DIR` holds `dataset.json` (or names a spec file itself). docs/OWN_DATA.md documents
the format; in short:

  {"version": 1,
   "modalities": [
     {"name": "image", "kind": "image", "column": "file", "size": [28, 28], "channels": 1},
     {"name": "label", "kind": "class", "column": "label"}],
   "splits": {"train": "train.csv", "test": "test.csv"}}

- Each modality has a name, a kind (image, class, attributes, vector, text), where its values are
  ("column": one column of a CSV or JSONL table or one array of an .npz; "columns": several
  table columns, e.g. the attributes) and optionally "present" (a column or array of booleans:
  where the modality is present), "likelihood" and the kind's settings
  (jmvae_tf.core.own_data).
- A text is one column of captions (a table's text cells, or a str array of an .npz), with
  optionally "max_tokens" (T) and "vocabulary_size" (V); its vocabulary is the training
  captions'.
- Images are PNG or JPEG files named (relative to DIR) in a table column, or uint8 arrays of
  an .npz. A declared "size" must be met unless "fit" is "resize" or "crop"; without one, all
  images must share the first one's size.
- Splits: "splits" maps train (required), validation and test to a file or a list of files
  whose rows line up (e.g. a CSV and an .npz); or "files" lists such files once and
  "fractions" ({"validation": 0.1, "test": 0.1}) with "seed" (default 0) deal their rows out.

Everything is read and checked when the data set is made, so bad input is one line naming the
file, the line or row, the column and what is wrong, before anything is written; images that
stream have their headers checked then, their pixels when their batch is read. Table values
and .npz arrays are held in memory; images are decoded into memory when they fit
(--data_options=in_memory=auto: at most IN_MEMORY_BYTES of pixels; yes; no), else each batch
reads its files (a data set larger than memory streams). .npz files are read without pickles:
one that holds objects is refused.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from jmvae_tf.core.data import SPLITS, DataError, check_options
from jmvae_tf.core.files import first_line, stderr_set_aside
from jmvae_tf.core.own_data import (
  ATTRIBUTES,
  IMAGE_KIND,
  TEXT,
  Declared,
  OwnDataSet,
  fit_image,
)

SPEC_FILE = "dataset.json"
SPEC_VERSION = 1
SPEC_KEYS = {"version", "description", "modalities", "splits", "files", "fractions", "seed"}
SOURCE_KEYS = ("column", "columns", "present")
TEXT_SOURCE_KEYS = ("column", "present")  # a text's captions are one column
TABLES = (".csv", ".jsonl")
ARRAYS = (".npz",)
IN_MEMORY = ("auto", "yes", "no")
IN_MEMORY_BYTES = 2 << 30  # decoded pixels kept in memory under in_memory=auto
_DECODE_BATCH = 256


# --- files -------------------------------------------------------------------------------
class Source:
  """One file's columns: {column: values [N] (a table's cells) or an array [N, ...] (.npz)},
  and where a row is, for messages."""

  def __init__(self, path: Path, columns: Dict[str, np.ndarray], lines: Optional[List[int]]):
    self.path, self.columns, self.lines = path, columns, lines
    self.rows = len(next(iter(columns.values()))) if columns else 0

  def where(self, row: int, column: str) -> str:
    if self.lines is None:  # an .npz
      return f"{self.path}: array {column!r} row {row}"
    return f"{self.path}: line {self.lines[row]}, column {column!r}"


def read_source(path: Path) -> Source:
  """A CSV (with a header), JSONL (an object a line) or .npz file; a DataError naming it."""
  if not path.is_file():
    raise DataError(f"{path}: no such file")
  suffix = path.suffix.lower()
  try:
    if suffix == ".csv":
      return _read_csv(path)
    if suffix == ".jsonl":
      return _read_jsonl(path)
    if suffix == ".npz":
      return _read_npz(path)
  except OSError as error:
    raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
  except UnicodeDecodeError as error:
    raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
  raise DataError(f"{path}: a data file is .csv, .jsonl or .npz, not {suffix or 'without suffix'}")


def _text_of(path: Path) -> str:
  """The file's text (UTF-8, a byte-order mark dropped); bytes that are not UTF-8 are a
  DataError naming the line they are on."""
  data = path.read_bytes()
  if data.startswith(codecs.BOM_UTF8):
    data = data[len(codecs.BOM_UTF8) :]
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as error:
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    raise DataError(
      f"{path}: line {line} is not UTF-8 text (byte 0x{data[error.start]:02x} at its byte "
      f"{column}: {error.reason}); save the file as UTF-8"
    ) from None


def _read_csv(path: Path) -> Source:
  with io.StringIO(_text_of(path), newline="") as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if not header:
      raise DataError(f"{path}: empty; a CSV starts with a header line naming its columns")
    header = [h.strip() for h in header]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
      raise DataError(f"{path}: line 1 names column {repeated[0]!r} more than once")
    rows, lines = [], []
    for row in reader:
      if not row:
        continue
      line = reader.line_num  # the row's last line (a quoted cell may span several)
      if len(row) != len(header):
        raise DataError(f"{path}: line {line} has {len(row)} cells, the header {len(header)}")
      rows.append(row)
      lines.append(line)
  if not rows:
    raise DataError(f"{path}: a header and no rows")
  cells = np.array(rows, dtype=object).reshape(len(rows), len(header))
  return Source(path, {h: cells[:, i] for i, h in enumerate(header)}, lines)


def _read_jsonl(path: Path) -> Source:
  records, lines = [], []
  with io.StringIO(_text_of(path), newline=None) as f:  # newlines as a text file has them
    for line, text in enumerate(f, start=1):
      if not text.strip():
        continue
      try:
        record = json.loads(text)
      except json.JSONDecodeError as error:
        raise DataError(f"{path}: line {line} is not JSON ({error.msg})") from None
      if not isinstance(record, dict):
        raise DataError(f"{path}: line {line} is not a JSON object")
      records.append(record)
      lines.append(line)
  if not records:
    raise DataError(f"{path}: no records")
  keys = list(dict.fromkeys(k for r in records for k in r))
  columns = {}
  for k in keys:
    column = np.empty(len(records), object)
    column[:] = [r.get(k) for r in records]  # an absent key is a missing value
    columns[k] = column
  return Source(path, columns, lines)


def _read_npz(path: Path) -> Source:
  try:
    with np.load(path, allow_pickle=False) as archive:
      columns = {}
      for key in archive.files:
        try:
          columns[key] = archive[key]
        except ValueError:
          raise DataError(
            f"{path}: array {key!r} holds Python objects, which are not read (no pickles); "
            "save numbers, booleans or fixed-width strings (captions: np.array(captions, "
            "dtype=str))"
          ) from None
  except (ValueError, OSError, EOFError) as error:
    if isinstance(error, DataError):
      raise
    raise DataError(f"{path}: not a readable .npz ({error})") from None
  sizes = {k: len(v) if v.ndim else None for k, v in columns.items()}
  if any(s is None for s in sizes.values()):
    raise DataError(f"{path}: array {next(k for k, s in sizes.items() if s is None)!r} is a scalar")
  if len(set(sizes.values())) > 1:
    raise DataError(f"{path}: its arrays have different row counts {sizes}")
  return Source(path, columns, None)


# --- image headers -----------------------------------------------------------------------
def image_header(path: str) -> Tuple[str, int, int, int]:
  """(format, height, width, channels) of a PNG or JPEG file, from its header; a ValueError
  saying why not."""
  try:
    with open(path, "rb") as f:
      head = f.read(4096)
      if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        colour = head[25]
        return "png", height, width, 1 if colour in (0, 4) else 3
      if head[:3] == b"\xff\xd8\xff":
        data = head
        while True:  # the frame header follows the metadata: read on only until it
          try:
            return ("jpeg",) + _jpeg_size(data)
          except ValueError:
            more = f.read(65536)
            if not more:
              raise
            data += more
  except FileNotFoundError:
    raise ValueError("no such file") from None
  except OSError as error:
    raise ValueError(f"cannot be read ({error.strerror})") from None
  raise ValueError("not a PNG or JPEG file")


def _jpeg_size(data: bytes) -> Tuple[int, int, int]:
  i = 2
  while i + 9 < len(data):
    if data[i] != 0xFF:
      i += 1
      continue
    marker = data[i + 1]
    if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
      i += 1 if marker == 0xFF else 2
      continue
    length = int.from_bytes(data[i + 2 : i + 4], "big")
    if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
      height = int.from_bytes(data[i + 5 : i + 7], "big")
      width = int.from_bytes(data[i + 7 : i + 9], "big")
      return height, width, 1 if data[i + 9] == 1 else 3
    i += 2 + length
  raise ValueError("a JPEG without a frame header (truncated or corrupt)")


def signature(path: str) -> int:
  """64 bits of a file's name, size and last bytes: what the fingerprint is made of for
  images read from files (as for CelebA's folder)."""
  with open(path, "rb") as f:
    size = os.fstat(f.fileno()).st_size
    f.seek(max(0, size - 64))
    tail = f.read()
  h = hashlib.blake2b(os.path.basename(path).encode() + size.to_bytes(8, "little") + tail)
  return int.from_bytes(h.digest()[:8], "little", signed=True)


def image_loader(declared: Declared, size: Tuple[int, int], fit: bool):
  """A tf function: a file's path -> uint8 [H, W, C] (fitted where asked)."""
  channels = declared.channels

  def load(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    if fit:
      image = fit_image(image, size, declared.fit)
    return tf.ensure_shape(image, tuple(size) + (channels,))

  return load


def decode_in_order(
  paths: Sequence[str], load, out: np.ndarray, unit: str = "image", kind: str = "image"
) -> np.ndarray:
  """Every file of `paths` decoded by `load` (in parallel, in order) into `out` ([N, ...], no
  copy made), with a progress bar on long work (`unit`s); a file that cannot be decoded is a
  DataError naming it (a damaged `kind`). libjpeg's own warnings are kept off the console and
  summed up in one line where files still decoded. The CelebA pipeline decodes its faces so."""
  from tf_keras.utils import Progbar  # pylint: disable=g-import-not-at-top

  dataset = (
    tf.data.Dataset.from_tensor_slices(np.asarray(paths, str))
    .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    .batch(_DECODE_BATCH)
  )
  done = 0
  bar = Progbar(len(paths), unit_name=unit) if len(paths) > 10 * _DECODE_BATCH else None
  iterator = iter(dataset)
  with stderr_set_aside(show_on_failure=False) as libjpeg:
    while done < len(paths):
      try:
        batch = next(iterator).numpy()
      except tf.errors.InvalidArgumentError:
        # Batches come in order, so the damaged file is in this one: find it.
        for path in paths[done : done + _DECODE_BATCH]:
          try:
            load(tf.constant(path))
          except tf.errors.InvalidArgumentError as error:
            # TensorFlow's "{{function_node ...}}" and "[Op:DecodeJpeg]" say nothing here.
            message = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]", "", error.message)
            reason = first_line(error, 160, with_type=False, message=message)
            raise DataError(f"{path}: a damaged {kind} that cannot be decoded ({reason})") from None
        raise
      out[done : done + len(batch)] = batch
      done += len(batch)
      if bar is not None:
        bar.update(done)
    warnings = [line for line in libjpeg().splitlines() if line.strip()]
  if warnings:
    print(
      f"warning: libjpeg reported {len(warnings)} problem(s) in the {unit}s it decoded, e.g. "
      f"{warnings[0]!r}; those files decoded, perhaps with damage",
      file=sys.stderr,
      flush=True,
    )
  return out


# --- the spec ----------------------------------------------------------------------------
def spec_path(data_dir) -> Path:
  if data_dir is None:
    raise DataError(f"--dataset=files needs --data_dir: a folder holding {SPEC_FILE}")
  path = Path(data_dir)
  if path.is_dir():
    path = path / SPEC_FILE
  if not path.is_file():
    raise DataError(f"{path}: no such file (--dataset=files reads a folder's {SPEC_FILE})")
  return path


def read_spec(path: Path) -> dict:
  try:
    spec = json.loads(path.read_text(encoding="utf-8"))
  except json.JSONDecodeError as error:
    raise DataError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
  except (OSError, UnicodeDecodeError) as error:
    raise DataError(f"{path}: cannot be read ({error})") from None
  if not isinstance(spec, dict):
    raise DataError(f"{path}: the spec is a JSON object")
  unknown = sorted(set(spec) - SPEC_KEYS)
  if unknown:
    raise DataError(f"{path}: unknown key {unknown[0]!r} (a spec has {sorted(SPEC_KEYS)})")
  if spec.get("version") != SPEC_VERSION:
    raise DataError(
      f"{path}: version {spec.get('version')!r}; this jmvae-tf reads version {SPEC_VERSION}"
    )
  modalities = spec.get("modalities")
  if not isinstance(modalities, list) or not modalities:
    raise DataError(f"{path}: modalities must be a non-empty list")
  names = [m.get("name") if isinstance(m, dict) else None for m in modalities]
  repeated = sorted({n for n in names if n is not None and names.count(n) > 1})
  if repeated:
    raise DataError(f"{path}: modality name {repeated[0]!r} is used twice")
  if ("splits" in spec) == ("files" in spec):
    raise DataError(f"{path}: give either splits (a file per split) or files and fractions")
  return spec


def _as_list(value, where) -> List[str]:
  items = [value] if isinstance(value, str) else value
  if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
    raise DataError(f"{where}: a file name or a list of file names, got {value!r}")
  return items


def _split_files(spec: dict, path: Path) -> Dict[str, List[str]]:
  if "splits" in spec:
    splits = spec["splits"]
    if not isinstance(splits, dict) or "train" not in splits:
      raise DataError(f"{path}: splits must map train (and validation, test) to files")
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
      raise DataError(f"{path}: unknown split {unknown[0]!r}; splits are {list(SPLITS)}")
    return {s: _as_list(f, f"{path}: splits.{s}") for s, f in splits.items()}
  return {"all": _as_list(spec["files"], f"{path}: files")}


def _fraction_rows(spec: dict, path: Path, n: int) -> Dict[str, np.ndarray]:
  fractions = spec.get("fractions", {})
  if not isinstance(fractions, dict) or set(fractions) - {"validation", "test"}:
    raise DataError(f"{path}: fractions maps validation and test to shares, got {fractions!r}")
  if any(not isinstance(v, (int, float)) or v < 0 for v in fractions.values()):
    raise DataError(f"{path}: fractions must be numbers from 0 to 1, got {fractions!r}")
  if sum(fractions.values()) >= 1:
    raise DataError(f"{path}: fractions {fractions} leave no training rows")
  seed = spec.get("seed", 0)
  if not isinstance(seed, int):
    raise DataError(f"{path}: seed must be a whole number, got {seed!r}")
  order = np.random.default_rng(seed).permutation(n)
  out, start = {}, 0
  for split in ("test", "validation"):
    count = int(round(fractions.get(split, 0) * n))
    if count:
      out[split] = np.sort(order[start : start + count])
      start += count
  out["train"] = np.sort(order[start:])
  return out


class FilesDataSet(OwnDataSet):
  """`--dataset=files`: the module docstring's spec in `data_dir`. Options: missing=refuse
  (default), drop, keep or name:share[,...] (OwnDataSet's); in_memory=auto (default), yes or
  no."""

  name = "files"

  def __init__(
    self,
    data_dir=None,
    num_train: Optional[int] = None,
    validation: bool = False,
    **options: str,
  ):
    options_given = dict(options)
    in_memory = options.pop("in_memory", "auto")
    check_options(
      "files", {**options, "in_memory": in_memory}, {"missing": (), "in_memory": IN_MEMORY}
    )
    path = spec_path(data_dir)
    self._spec = path
    spec = read_spec(path)
    root = path.parent
    entries = spec["modalities"]
    declared = [Declared.parse(e, str(path), _source_keys(e)) for e in entries]
    for i, e in enumerate(entries):
      columns = _column_names(e, path)
      if declared[i].kind == ATTRIBUTES and declared[i].names is None and len(columns) > 1:
        declared[i] = dataclasses.replace(declared[i], names=tuple(columns))  # the Projector's
    files = _split_files(spec, path)
    sources = {
      split: [read_source(root / name) for name in names] for split, names in files.items()
    }
    # raw[split][modality]: its values; where[split][modality]: (the source of each of its
    # columns, the file row of each of the split's rows), for messages.
    raw, where = {}, {}
    for split, split_sources in sources.items():
      raw[split], having = self._columns(path, split, split_sources, entries)
      n = split_sources[0].rows
      where[split] = {k: (v, np.arange(n)) for k, v in having.items()}
    if "all" in raw:
      whole, whole_where = raw.pop("all"), where.pop("all")
      n = len(next(iter(whole_where.values()))[1])
      for split, rows in _fraction_rows(spec, path, n).items():
        raw[split] = {k: v[rows] for k, v in whole.items()}
        where[split] = {k: (s, r[rows]) for k, (s, r) in whole_where.items()}
    if validation and "validation" not in raw:
      n = len(next(iter(where["train"].values()))[1])
      if num_train is None or num_train >= n:
        raise DataError(
          f"{path}: no validation split; give one in the spec, or num_train below the "
          f"{n} training rows to hold the rest out"
        )
      for split, part in (("validation", slice(num_train, n)), ("train", slice(0, num_train))):
        raw[split] = {k: v[part] for k, v in raw["train"].items()}
        where[split] = {k: (s, r[part]) for k, (s, r) in where["train"].items()}
      num_train = None
    columns_of = {e["name"]: _column_names(e) for e in entries}

    def locate(split: str, name: str, row: int, column: Optional[int] = None) -> str:
      sources_of, rows = where[split][name]
      names = columns_of[name]
      if column is not None and len(names) == 1 and column > 0:  # a component of one array
        return f"{sources_of[0].where(int(rows[row]), names[0])}, component {column}"
      return sources_of[column or 0].where(int(rows[row]), names[column or 0])

    content, loaders, from_files, fits = {}, {}, set(), {}
    for d in declared:
      if d.kind != IMAGE_KIND or raw["train"][d.name].dtype.kind not in "OU":
        continue  # an .npz's pixels: checked and fitted as arrays
      from_files.add(d.name)
      fits[d.name] = d.fit
      d, fitted_size, needs_fit = self._check_image_files(d, raw, root, locate)
      declared = [d if x.name == d.name else x for x in declared]
      load = image_loader(d, fitted_size, needs_fit)
      loaders[d.name] = load
      content[d.name] = np.array(
        [signature(p) if p else 0 for p in raw["train"][d.name].tolist()], np.int64
      )
      total = sum(len(r[d.name]) for r in raw.values()) * int(np.prod(fitted_size)) * d.channels
      if in_memory == "yes" or (in_memory == "auto" and total <= IN_MEMORY_BYTES):
        for split in raw:
          raw[split][d.name] = self._decoded(raw[split][d.name], load, d, fitted_size, split)
    kinds = {d.name: _declaration(d, d.name in from_files) for d in declared}
    given_in_memory = "in_memory" in options_given
    super().__init__(
      kinds,
      raw["train"],
      raw.get("validation"),
      raw.get("test"),
      name="files",
      architecture="generic",
      num_train=num_train,
      image_loader=lambda d: loaders[d.name],
      locate=locate,
      content=content,
      fitting=";".join(
        f"{d.name}:{d.size}:{d.channels}:{fits[d.name]}" for d in declared if d.name in fits
      ),
      **options,
    )
    self.spec_file = str(path)
    if given_in_memory:  # recorded with the run, so what reads it reads the files the same way
      self.options = tuple(sorted(self.options + (f"in_memory={in_memory}",)))

  @staticmethod
  def _columns(path, split, sources: List[Source], entries):
    """{modality: raw values} of one split, and {modality: the source of each of its
    columns}; a DataError for a column no file (or two files) has, or files of other
    lengths."""
    counts = {str(s.path): s.rows for s in sources}
    if len(set(counts.values())) > 1:
      raise DataError(f"{path}: the {split} files have different row counts: {counts}")
    raw, where = {}, {}
    for e in entries:
      columns = _column_names(e)
      where[e["name"]] = []
      values = []
      for column in columns:
        having = [s for s in sources if column in s.columns]
        if not having:
          files = ", ".join(str(s.path) for s in sources)
          raise DataError(f"{files}: no column {column!r} (modality {e['name']!r}, {split} split)")
        if len(having) > 1:
          raise DataError(
            f"{path}: column {column!r} is in {having[0].path} and {having[1].path}; rename one"
          )
        values.append(having[0].columns[column])
        where[e["name"]].append(having[0])
      value = values[0] if "column" in e else np.stack(values, axis=1)
      if "present" in e:
        having = [s for s in sources if e["present"] in s.columns]
        if not having:
          raise DataError(f"{path}: no column {e['present']!r} (modality {e['name']!r}'s present)")
        mask = _booleans(having[0], e["present"])
        value = np.ma.MaskedArray(value, mask=_broadcast(~mask, value))
      raw[e["name"]] = value
    return raw, where

  def _check_image_files(self, d: Declared, raw, root: Path, locate):
    """Checks every image file's existence, format and size (headers only); sets the size
    and channels where the spec left them to the data; makes paths absolute."""
    first = None
    for split, values in raw.items():
      column = values[d.name]
      data = column.data if isinstance(column, np.ma.MaskedArray) else column
      absolute = np.empty(len(data), object)
      masked = np.ma.getmaskarray(column) if isinstance(column, np.ma.MaskedArray) else None
      for row, cell in enumerate(data.tolist()):
        if cell is None or not str(cell).strip() or (masked is not None and masked[row]):
          absolute[row] = ""
          continue
        file = os.path.join(root, str(cell).strip())
        try:
          _, height, width, channels = image_header(file)
        except ValueError as error:
          raise DataError(f"{locate(split, d.name, row)}: image {cell!r}: {error}") from None
        if first is None:
          first = (height, width, channels)
        wanted = d.size or first[:2]
        if (height, width) != tuple(wanted) and d.fit == "none":
          why = "the declared size" if d.size else f"the first image's ({first[0]}x{first[1]})"
          raise DataError(
            f"{locate(split, d.name, row)}: image {cell!r} is {height}x{width}, not "
            f'{wanted[0]}x{wanted[1]}, {why}; "fit": "resize" or "crop" fits other sizes'
          )
        absolute[row] = file
      if isinstance(column, np.ma.MaskedArray):
        absolute = np.ma.MaskedArray(absolute, mask=column.mask)
      values[d.name] = absolute
    if first is None:
      raise DataError(f"{self._spec}: modality {d.name!r} names no image files at all")
    size = d.size or first[:2]
    channels = d.channels or first[2]
    d = dataclasses.replace(d, size=tuple(size), channels=channels)
    return d, tuple(size), d.fit != "none"

  def _decoded(self, column, load, d: Declared, size, split: str):
    data = column.data if isinstance(column, np.ma.MaskedArray) else column
    if data.dtype == np.uint8:
      return column
    present = np.array([bool(p) for p in data.tolist()])
    paths = [p for p in data.tolist() if p]
    pixels = np.zeros((len(data),) + tuple(size) + (d.channels,), np.uint8)
    if len(paths) > 10 * _DECODE_BATCH:
      print(f"files {split} {d.name!r}: decoding {len(paths)} images into memory, once")
    if paths and present.all():
      decode_in_order(paths, load, pixels)
    elif paths:
      pixels[present] = decode_in_order(
        paths, load, np.empty((len(paths),) + pixels.shape[1:], np.uint8)
      )
    mask = ~present
    if isinstance(column, np.ma.MaskedArray):
      mask |= np.ma.getmaskarray(column)
    if not mask.any():  # a masked array's mask is as large as the pixels: only where needed
      return pixels
    return np.ma.MaskedArray(pixels, mask=_broadcast(mask, pixels))


def _declaration(d: Declared, from_files: bool) -> dict:
  """What OwnDataSet is told of `d`: images from files arrive fitted (by their loader)."""
  out = {"kind": d.kind, "likelihood": d.likelihood}
  if d.names is not None:
    out["names"] = list(d.names)
  if d.classes is not None:
    out["classes"] = list(d.classes)
  if d.kind == IMAGE_KIND and from_files:
    out.update(size=list(d.size), channels=d.channels, fit="none")
  elif d.kind == IMAGE_KIND:
    out.update({k: v for k, v in (("size", d.size), ("channels", d.channels)) if v is not None})
    if d.size is not None:
      out.update(size=list(d.size), fit=d.fit)
  if d.standardize:
    out["standardize"] = True
  if d.kind == TEXT:
    out.update({k: getattr(d, k) for k in ("max_tokens", "vocabulary_size") if getattr(d, k)})
  return out


def _source_keys(entry) -> Tuple[str, ...]:
  text = isinstance(entry, dict) and entry.get("kind") == TEXT
  return TEXT_SOURCE_KEYS if text else SOURCE_KEYS


def _column_names(entry, spec: Optional[Path] = None) -> List[str]:
  where = f"{spec}: modality {entry.get('name')!r}" if spec else f"modality {entry.get('name')!r}"
  if ("column" in entry) == ("columns" in entry):
    raise DataError(f"{where}: give column (one) or columns (several)")
  names = [entry["column"]] if "column" in entry else entry["columns"]
  if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
    raise DataError(f"{where}: columns must be a list of column names")
  return names


def _booleans(source: Source, column: str) -> np.ndarray:
  values = source.columns[column]
  out = np.zeros(len(values), bool)
  for row, v in enumerate(values.tolist()):
    text = str(v).strip().lower()
    if text in ("1", "true", "1.0"):
      out[row] = True
    elif text not in ("0", "false", "0.0"):
      raise DataError(f"{source.where(row, column)}: {v!r} is not a boolean (1/0, true/false)")
  return out


def _broadcast(mask: np.ndarray, value) -> np.ndarray:
  return np.broadcast_to(mask.reshape((len(mask),) + (1,) * (np.ndim(value) - 1)), np.shape(value))
