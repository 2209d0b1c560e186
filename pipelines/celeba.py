"""CelebA: 64x64 colour faces x paired with their 40 binary attributes w.

The paper (section 4.1) cropped the face that OpenCV found in each CelebA image, resized
it to 64x64x3 and kept the 191,899 images where a face was found, split 90/10 into
train and test. This module reproduces that as closely as a fixed pipeline can:

* Crop (`--data_options crop=...`):
  - "paper" (default): OpenCV's detector is not re-run; on the *aligned* 178x218 images
    (eyes are always near (69, 111) and (108, 111), the mouth near y = 152) the face box
    it finds is nearly constant, so we cut the fixed box `CROP_BOXES["paper"]`: rows
    77..172, columns 41..136 (a 96x96 square, about 2.5 eye distances wide, eyes at
    36% of its height), which spans eyebrows to chin and cheek to cheek. All images are
    kept (202,599 in the full release, not the paper's 191,899).
  - "center": the centre 148x148 square (rows 35..182, columns 15..162), the crop used by
    most later CelebA VAE/GAN work; it includes hair and background.
  Either way the crop is resized to 64x64 (bilinear, antialiased), rounded to uint8 and
  scaled to [-1, 1] (the decoder's tanh mean lives there).
* w: the 40 attributes as float32 in {-1, 1}, in CelebA's order (`ATTRIBUTE_NAMES`).
* Split (`--data_options split=...`):
  - "paper" (default): all images in file order, the first 90% for training and the last
    10% (n // 10) for test; with `validation=True` the last tenth of the training part
    becomes the validation split (so its size does not depend on `num_train`).
  - "official": CelebA's list_eval_partition.txt (0 train, 1 validation, 2 test); the
    validation images are used only when `validation=True`.
  `num_train` keeps the first N training examples.

Sources (both real data; nothing here is synthetic):
* `data_dir`: a folder in CelebA's release layout, `img_align_celeba/000001.jpg ...`,
  `list_attr_celeba.txt` and (needed for split=official, checked whenever present)
  `list_eval_partition.txt`; or Kaggle's copy (`list_attr_celeba.csv`,
  `list_eval_partition.csv`, `img_align_celeba/img_align_celeba/`); a UTF-8 byte-order mark
  is read past. The faces are decoded once into the cache (below) and held in memory as
  64x64 uint8, as TFDS's are.
* `data_dir=None`: TFDS's `celeb_a` (its train, validation and test splits stand for
  partitions 0, 1 and 2; "file order" for split=paper is their concatenation in TFDS's own
  deterministic order, since TFDS does not keep the file names). TFDS gives decoded
  images, so they are cropped and resized once at construction and held as 64x64 uint8
  (about 2.5 GB for all of CelebA); the folder source scales better.
A folder written by `pipelines.synthetic_faces` (the stand-in) holds its marker file
`SYNTHETIC_FACES.txt`; the data set's `provenance` then says "synthetic faces (not CelebA)",
and runners.evaluate prints that beside the paper's numbers.

Bad data stops the constructor with one `DataError` naming the file and the problem:
missing files, a header that is not CelebA's 40 names, malformed rows, values other than
1/-1, disagreeing counts or names, a listed image that does not exist. Every listed file is
checked cheaply first, reading its first and last bytes: it must start with the JPEG SOI
marker (FF D8 FF) and have the EOI marker (FF D9) among its last 64 bytes (entropy-coded data
never contains FF D9, so a truncated file fails); those bytes, the name and the size are the
file's signature. Then the faces are decoded, cropped and resized once and kept as uint8 in a
cache (`cached_faces`, $JMVAE_TF_CACHE_DIR or ~/.cache/jmvae_tf, keyed by the signatures and
the crop): a JPEG damaged inside, which only a decode finds, is named then, before any
training, and no epoch decodes a JPEG again.

The training stream is a pure function of (seed, epoch, step), as for MNIST: epoch e reads
positions 0, 1, ... of the stateless permutation `index_shuffle(seed=[seed, e])`, full
batches only, so a run resumed at epoch e reads what an uninterrupted one would have.
There is no random preprocessing, so evaluation streams do not depend on their seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from jmvae_tf.core import missing
from jmvae_tf.core.data import DataError, DataSet, check_options, digest
from jmvae_tf.core.files import cache_dir
from jmvae_tf.core.likelihoods import GAUSSIAN_FIXED
from jmvae_tf.core.modalities import IMAGE, VECTOR, Modality
from pipelines import captioning, captions
from pipelines.celeba_attributes import (
  ATTRIBUTE_FILE,
  ATTRIBUTE_NAMES,
  IMAGE_DIR,
  KAGGLE_ATTRIBUTE_FILE,
  KAGGLE_PARTITION_FILE,
  PARTITION_FILE,
)
from pipelines.files import decode_in_order
from pipelines.synthetic_faces import MARKER_FILE as SYNTHETIC_MARKER

PathLike = Union[str, os.PathLike]

NUM_ATTRIBUTES = len(ATTRIBUTE_NAMES)

# A folder written by pipelines.synthetic_faces (it holds SYNTHETIC_MARKER) is labelled so.
SYNTHETIC_PROVENANCE = "synthetic faces (not CelebA)"

ALIGNED_HEIGHT, ALIGNED_WIDTH = 218, 178
IMAGE_SIZE = 64
# (top, left, height, width) on the aligned 178x218 layout; see the module docstring.
CROP_BOXES: Dict[str, Tuple[int, int, int, int]] = {
  "paper": (77, 41, 96, 96),
  "center": (35, 15, 148, 148),
}
SPLIT_OPTIONS = ("paper", "official")

_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"
_JPEG_TAIL_BYTES = 64
_TFDS_COLLECT_BATCH = 256


# --------------------------------------------------------------------------------------
# Preprocessing, shared by both sources and by users' own pictures.


def _crop_box(crop: str) -> Tuple[int, int, int, int]:
  if crop not in CROP_BOXES:
    raise DataError(f"unknown crop {crop!r}; choose from {sorted(CROP_BOXES)}")
  return CROP_BOXES[crop]


def crop_resize_uint8(image: tf.Tensor, crop: str = "paper") -> tf.Tensor:
  """uint8 [H, W, 3] of any size -> the face crop as uint8 [64, 64, 3].

  The box is defined on the aligned 178x218 layout. Other sizes are first cut to the
  largest centred region with that layout's aspect ratio, and the box is scaled with
  it, so a 178x218 image gets exactly the box and e.g. a 356x436 one the same face
  region. Works in graph mode (inside tf.data) on dynamic shapes.
  """
  top, left, height, width = _crop_box(crop)
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  image_h, image_w = shape[0], shape[1]
  region_h = tf.minimum(image_h, image_w * ALIGNED_HEIGHT / ALIGNED_WIDTH)
  scale = region_h / ALIGNED_HEIGHT
  offset_y = (image_h - region_h) / 2.0
  offset_x = (image_w - scale * ALIGNED_WIDTH) / 2.0

  def pixels(value):
    return tf.cast(tf.round(value), tf.int32)

  box_h = tf.maximum(pixels(height * scale), 1)
  box_w = tf.maximum(pixels(width * scale), 1)
  y0 = tf.clip_by_value(pixels(offset_y + top * scale), 0, tf.shape(image)[0] - box_h)
  x0 = tf.clip_by_value(pixels(offset_x + left * scale), 0, tf.shape(image)[1] - box_w)
  face = image[y0 : y0 + box_h, x0 : x0 + box_w, :]
  resized = tf.image.resize(
    tf.cast(face, tf.float32), [IMAGE_SIZE, IMAGE_SIZE], method="bilinear", antialias=True
  )
  return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def to_unit_range(images: tf.Tensor) -> tf.Tensor:
  """uint8 pixels -> float32 in [-1, 1] (0 -> -1, 255 -> 1)."""
  return tf.cast(images, tf.float32) / 127.5 - 1.0


def preprocess_image(image, crop: str = "paper") -> tf.Tensor:
  """A picture -> float32 [64, 64, 3] in [-1, 1], as the models saw CelebA.

  `image`: encoded bytes (JPEG, PNG, BMP or GIF: a string tensor or Python bytes) or
  decoded uint8 pixels [H, W], [H, W, 1], [H, W, 3] or [H, W, 4] (alpha dropped), any
  size. For editing a user's own photo: the face should fill the picture roughly as in
  CelebA's aligned images (centred, eyes a little above the middle).
  """
  _crop_box(crop)
  if isinstance(image, (bytes, bytearray)):
    image = tf.constant(bytes(image))
  image = tf.convert_to_tensor(image)
  if image.dtype == tf.string:
    image = tf.io.decode_image(image, channels=3, expand_animations=False)
  if image.dtype != tf.uint8:
    raise ValueError(f"preprocess_image: expected uint8 pixels or encoded bytes, got {image.dtype}")
  if image.shape.rank == 2:
    image = image[..., tf.newaxis]
  if image.shape.rank != 3 or image.shape[-1] not in (1, 3, 4):
    raise ValueError(f"preprocess_image: expected [H, W, 1|3|4] pixels, got {image.shape}")
  if image.shape[-1] == 1:
    image = tf.image.grayscale_to_rgb(image)
  elif image.shape[-1] == 4:
    image = image[..., :3]
  return to_unit_range(crop_resize_uint8(image, crop))


# --------------------------------------------------------------------------------------
# The folder in CelebA's release layout: reading and checking.


@dataclasses.dataclass(frozen=True)
class CelebAFiles:
  """The checked contents of a CelebA folder: names, attributes and partition in file
  order (`partition` is None when list_eval_partition.txt is absent)."""

  image_paths: np.ndarray  # str [N], full paths
  attributes: np.ndarray  # int8 [N, 40] in {-1, 1}
  partition: Optional[np.ndarray]  # int8 [N] in {0, 1, 2}
  signatures: np.ndarray  # uint64 [N]: each image's name, size and last bytes (inspect_jpeg)


def _read_lines(path: Path) -> list:
  """The file's lines, a UTF-8 byte-order mark (as some tools write) left out."""
  try:
    text = path.read_text(encoding="utf-8-sig")
  except UnicodeDecodeError as error:
    raise DataError(f"{path}: not a text file ({error})") from None
  lines = text.splitlines()
  while lines and not lines[-1].strip():
    lines.pop()
  return lines


def _is_csv(path: Path) -> bool:
  return path.suffix.lower() == ".csv"


def read_attribute_file(path: PathLike) -> Tuple[list, np.ndarray]:
  """The attribute file -> (file names in order, int8 attributes [N, 40]), in either layout:

  list_attr_celeba.txt (the release): the count, the 40 names, then `000001.jpg -1  1 ...`
    rows (any whitespace);
  list_attr_celeba.csv (Kaggle's): a header `image_id,5_o_Clock_Shadow,...`, then
    `000001.jpg,-1,1,...` rows.
  """
  path = Path(path)
  if not path.is_file():
    raise DataError(f"{path}: missing attribute file {ATTRIBUTE_FILE} (or {KAGGLE_ATTRIBUTE_FILE})")
  lines = _read_lines(path)
  if _is_csv(path):
    if not lines:
      raise DataError(f"{path}: empty; expected a header line image_id,{ATTRIBUTE_NAMES[0]},...")
    header = [field.strip() for field in lines[0].split(",")]
    if not header or header[0] != "image_id":
      raise DataError(f"{path}: line 1 should start with image_id, got {lines[0]!r:.60}")
    names, first_row, count = tuple(header[1:]), 2, None
    split = lambda line: [field.strip() for field in line.split(",")]
  else:
    if len(lines) < 2:
      raise DataError(f"{path}: expected a count line and a header line, the file is too short")
    try:
      count = int(lines[0].strip())
    except ValueError:
      raise DataError(
        f"{path}: line 1 should be the number of images, got {lines[0]!r:.60}"
      ) from None
    names, first_row, split = tuple(lines[1].split()), 3, str.split
  header_line = first_row - 1
  if len(names) != NUM_ATTRIBUTES:
    raise DataError(
      f"{path}: line {header_line} should be CelebA's {NUM_ATTRIBUTES} attribute names, it "
      f"has {len(names)}"
    )
  if names != ATTRIBUTE_NAMES:
    index = next(i for i, (a, b) in enumerate(zip(names, ATTRIBUTE_NAMES)) if a != b)
    raise DataError(
      f"{path}: line {header_line}: attribute {index + 1} is {names[index]!r}, CelebA's is "
      f"{ATTRIBUTE_NAMES[index]!r} (names must be CelebA's, in its order)"
    )
  valid = {"1", "-1"}
  file_names, values = [], []
  for line_number, line in enumerate(lines[first_row - 1 :], start=first_row):
    fields = split(line)
    if len(fields) != NUM_ATTRIBUTES + 1:
      raise DataError(
        f"{path}: line {line_number}: expected a file name and {NUM_ATTRIBUTES} values, "
        f"got {len(fields)} fields"
      )
    row = fields[1:]
    if not valid.issuperset(row):
      column = next(i for i, value in enumerate(row) if value not in valid)
      raise DataError(
        f"{path}: line {line_number} ({fields[0]}): {ATTRIBUTE_NAMES[column]} is "
        f"{row[column]!r}, attribute values must be 1 or -1"
      )
    file_names.append(fields[0])
    values.append(row)
  if count is not None and len(file_names) != count:
    raise DataError(f"{path}: line 1 says {count} images but the file lists {len(file_names)}")
  if not file_names:
    raise DataError(f"{path}: lists no images")
  if len(set(file_names)) != len(file_names):
    seen = set()
    duplicate = next(name for name in file_names if name in seen or seen.add(name))
    raise DataError(f"{path}: {duplicate} is listed more than once")
  return file_names, np.asarray(values, dtype=np.int8).reshape(-1, NUM_ATTRIBUTES)


def read_partition_file(
  path: PathLike, file_names: Sequence[str], attribute_file: str = ATTRIBUTE_FILE
) -> np.ndarray:
  """The partition file -> int8 [N] in {0, 1, 2}; the same files, in the same order, as the
  attribute file (CelebA lists both sorted by name). list_eval_partition.txt has
  `000001.jpg 0` rows; Kaggle's list_eval_partition.csv a header `image_id,partition`, then
  `000001.jpg,0` rows."""
  path = Path(path)
  lines = _read_lines(path)
  first = 0
  csv = _is_csv(path)
  if csv:
    header = [f.strip() for f in lines[0].split(",")] if lines else []
    if header != ["image_id", "partition"]:
      raise DataError(f"{path}: line 1 should be image_id,partition, got {lines[:1]!r:.60}")
    first = 1
  rows = lines[first:]
  if len(rows) != len(file_names):
    raise DataError(
      f"{path}: lists {len(rows)} images but {attribute_file} lists {len(file_names)}"
    )
  partition = np.empty(len(rows), np.int8)
  for index, (line, expected) in enumerate(zip(rows, file_names)):
    fields = [f.strip() for f in line.split(",")] if csv else line.split()
    if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
      raise DataError(
        f"{path}: line {first + index + 1}: expected a file name and 0, 1 or 2, got {line!r:.60}"
      )
    if fields[0] != expected:
      raise DataError(
        f"{path}: line {first + index + 1} is {fields[0]}, but {attribute_file} has "
        f"{expected} there"
      )
    partition[index] = int(fields[1])
  return partition


def find_layout(data_dir: Path) -> Tuple[Path, Path, Path]:
  """(attribute file, partition file, image directory) of a CelebA folder in the release's
  layout or Kaggle's (CSV files, the images one folder deeper:
  img_align_celeba/img_align_celeba/); the partition file need not exist."""
  attributes = data_dir / ATTRIBUTE_FILE
  partition = data_dir / PARTITION_FILE
  if not attributes.is_file() and (data_dir / KAGGLE_ATTRIBUTE_FILE).is_file():
    attributes = data_dir / KAGGLE_ATTRIBUTE_FILE
  if not partition.is_file() and (data_dir / KAGGLE_PARTITION_FILE).is_file():
    partition = data_dir / KAGGLE_PARTITION_FILE
  images = data_dir / IMAGE_DIR
  if (images / IMAGE_DIR).is_dir():
    images = images / IMAGE_DIR
  return attributes, partition, images


def inspect_jpeg(path: str) -> Tuple[Optional[str], int]:
  """(why `path` is not a well-framed JPEG (see the module docstring) or None, a 64-bit
  signature of its name, size and last bytes: what the data's fingerprint is made of)."""
  try:
    descriptor = os.open(path, os.O_RDONLY)
  except FileNotFoundError:
    return "missing", 0
  except OSError as error:
    return f"unreadable ({error.strerror})", 0
  try:
    size = os.fstat(descriptor).st_size
    head = os.pread(descriptor, len(_JPEG_SOI), 0)
    # From byte 2 on at the earliest, so that the SOI marker cannot pass for an EOI.
    tail = os.pread(descriptor, _JPEG_TAIL_BYTES, max(2, size - _JPEG_TAIL_BYTES))
  finally:
    os.close(descriptor)
  signature = hashlib.blake2b(
    os.path.basename(path).encode() + size.to_bytes(8, "little") + tail, digest_size=8
  ).digest()
  signature = int.from_bytes(signature, "little")
  if head != _JPEG_SOI:
    return "not a JPEG (no FF D8 FF start-of-image marker)", signature
  if _JPEG_EOI not in tail:
    return "truncated or corrupt JPEG (no FF D9 end-of-image marker at its end)", signature
  return None, signature


def read_folder(data_dir: PathLike, need_partition: bool = False) -> CelebAFiles:
  """Reads and checks a folder in CelebA's release layout or Kaggle's; a DataError on any
  fault."""
  data_dir = Path(data_dir)
  if not data_dir.is_dir():
    raise DataError(f"{data_dir}: CelebA data directory does not exist")
  attribute_path, partition_path, image_dir = find_layout(data_dir)
  file_names, attributes = read_attribute_file(attribute_path)
  partition = None
  if partition_path.is_file():
    partition = read_partition_file(partition_path, file_names, attribute_path.name)
  elif need_partition:
    raise DataError(f"{partition_path}: missing (split=official needs it)")
  if not image_dir.is_dir():
    raise DataError(f"{image_dir}: missing image directory")
  present = set(os.listdir(image_dir))
  missing = [name for name in file_names if name not in present]
  if missing:
    raise DataError(
      f"{image_dir / missing[0]}: listed in {attribute_path.name} but missing "
      f"({len(missing)} listed images missing)"
    )
  paths = [os.path.join(image_dir, name) for name in file_names]
  signatures = np.empty(len(paths), np.uint64)
  for i, path in enumerate(paths):
    problem, signatures[i] = inspect_jpeg(path)
    if problem:
      raise DataError(f"{path}: {problem}")
  return CelebAFiles(np.asarray(paths), attributes, partition, signatures)


# --------------------------------------------------------------------------------------
# Sources: a loader of (uint8 [64, 64, 3], int8 [40]) by row index, in tf.data.


@dataclasses.dataclass(frozen=True)
class _Source:
  """All rows of the data set (file order): their attributes, partition, and a tf
  function from a row index (int64 scalar) to its uint8 [64, 64, 3] face."""

  attributes: np.ndarray
  partition: Optional[np.ndarray]
  load_image: Callable[[tf.Tensor], tf.Tensor]
  description: str
  # rows -> an array that changes when their images do (not where they are): what the data's
  # fingerprint is made of.
  image_content: Callable[[np.ndarray], np.ndarray]


CACHE_VERSION = 1  # bump when the decoding or the crop changes what a cached face is


def decode_faces(paths: Sequence[str], crop: str) -> np.ndarray:
  """Every JPEG of `paths` decoded, cropped and resized: uint8 [N, 64, 64, 3]. A file that
  cannot be decoded (damage inside a well-framed JPEG) is a DataError naming it."""

  def load(path):
    return crop_resize_uint8(tf.io.decode_jpeg(tf.io.read_file(path), channels=3), crop)

  faces = np.empty((len(paths), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
  return decode_in_order(paths, load, faces, unit="face", kind="JPEG")


def cached_faces(files: CelebAFiles, crop: str) -> np.ndarray:
  """The decoded faces of `files` (decode_faces), decoded once and kept in files.cache_dir under a
  name made of the files' signatures (names, sizes, last bytes) and the crop, so a changed
  file is a new cache; written whole (aside, then renamed) or not at all. 64x64x3 bytes a
  face: 2.4 GB for CelebA's 202,599, read back in about a second instead of minutes of
  decoding (and of competing with the training step for the cores in every epoch)."""
  directory = cache_dir("celeba")
  key = digest(
    files.signatures, np.frombuffer(f"{crop} {IMAGE_SIZE} v{CACHE_VERSION}".encode(), np.uint8)
  )
  path = directory / f"celeba-faces-{key}.npy" if directory else None
  if path is not None and path.is_file():
    faces = np.load(path, mmap_mode="r", allow_pickle=False)
    if faces.shape == (len(files.image_paths), IMAGE_SIZE, IMAGE_SIZE, 3):
      return np.asarray(faces)
  faces = decode_faces(list(files.image_paths), crop)
  if path is not None:
    temp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
      directory.mkdir(parents=True, exist_ok=True)
      with open(temp, "wb") as f:
        np.save(f, faces, allow_pickle=False)
      os.replace(temp, path)
    except OSError as error:  # a full or read-only cache: decode again next time
      with contextlib.suppress(OSError):
        os.remove(temp)
      print(f"warning: could not keep the decoded faces in {directory}: {error}", flush=True)
  return faces


def _folder_source(data_dir: PathLike, crop: str, need_partition: bool) -> _Source:
  files = read_folder(data_dir, need_partition)
  images_tensor = tf.constant(cached_faces(files, crop))

  def load_image(index):
    return tf.gather(images_tensor, index)

  return _Source(
    files.attributes,
    files.partition,
    load_image,
    str(data_dir),
    lambda rows: files.signatures[rows],
  )


def _tfds_source(crop: str) -> _Source:
  """TFDS `celeb_a` (train, validation, test = partitions 0, 1, 2), faces preprocessed
  once into memory (TFDS has no random access to its records)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  def prepare(example):
    attributes = tf.stack([example["attributes"][name] for name in ATTRIBUTE_NAMES])
    return (
      crop_resize_uint8(example["image"], crop),
      tf.where(attributes, tf.constant(1, tf.int8), tf.constant(-1, tf.int8)),
    )

  images, attributes, partition = [], [], []
  for part, split in enumerate(("train", "validation", "test")):
    try:
      dataset = tfds.load("celeb_a", split=split, shuffle_files=False)
    except Exception as error:  # pylint: disable=broad-except
      first_line = (str(error).strip().splitlines() or [""])[0][:300]
      raise DataError(
        f"tfds celeb_a: cannot load or download it ({type(error).__name__}: {first_line}); "
        f"download CelebA's img_align_celeba, {ATTRIBUTE_FILE} and {PARTITION_FILE} by hand "
        f"and pass their folder as data_dir"
      ) from error
    dataset = (
      dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
      .batch(_TFDS_COLLECT_BATCH)
      .prefetch(tf.data.AUTOTUNE)
    )
    count = 0
    for image_batch, attribute_batch in tfds.as_numpy(dataset):
      images.append(image_batch)
      attributes.append(attribute_batch)
      count += len(image_batch)
    if not count:
      raise DataError(f"tfds celeb_a: split {split} is empty")
    partition.append(np.full(count, part, np.int8))
  images = np.concatenate(images)
  images_tensor = tf.constant(images)

  def load_image(index):
    return tf.gather(images_tensor, index)

  return _Source(
    np.concatenate(attributes),
    np.concatenate(partition),
    load_image,
    "tfds celeb_a",
    lambda rows: images[rows],
  )


def _split_rows(
  source: _Source, split_option: str, num_train: Optional[int], validation: bool
) -> Dict[str, np.ndarray]:
  """Row indices of train / validation / test (see the module docstring)."""
  total = len(source.attributes)
  if split_option == "paper":
    num_test = total // 10
    train_part = np.arange(total - num_test)
    rows = {"test": np.arange(total - num_test, total)}
    if validation:
      num_validation = len(train_part) // 10
      rows["validation"] = train_part[len(train_part) - num_validation :]
      train_part = train_part[: len(train_part) - num_validation]
  else:
    rows = {"test": np.flatnonzero(source.partition == 2)}
    train_part = np.flatnonzero(source.partition == 0)
    if validation:
      rows["validation"] = np.flatnonzero(source.partition == 1)
  rows["train"] = train_part
  for name, indices in rows.items():
    if not len(indices):
      raise DataError(
        f"{source.description}: split={split_option} leaves no {name} examples of {total}"
      )
  if num_train is not None:
    if num_train < 1 or num_train > len(train_part):
      raise DataError(
        f"{source.description}: num_train={num_train}, but the {split_option} split has "
        f"{len(train_part)} training examples"
      )
    rows["train"] = train_part[:num_train]
  return rows


# --------------------------------------------------------------------------------------
# The data set of the registry.


class CelebADataSet(captioning.Captioned, DataSet):
  labels_modality = "attributes"  # what captions=instead replaces
  """CelebA as in the paper: x = a 64x64x3 face in [-1, 1], w = its 40 attributes in
  {-1, 1}, both Gaussian with a tanh mean and unit variance. Options `crop` (paper,
  center) and `split` (paper, official); see the module docstring."""

  name = "celeb_a"
  architecture = "celeba_conv"

  def __init__(
    self,
    data_dir: Optional[PathLike] = None,
    num_train: Optional[int] = None,
    validation: bool = False,
    **options: str,
  ):
    self.options = check_options(
      self.name,
      options,
      {"crop": tuple(CROP_BOXES), "split": SPLIT_OPTIONS, **captioning.OPTIONS, missing.OPTION: ()},
    )
    caption_options, _ = captioning.take_options(self.name, options)
    self.crop = options.get("crop", "paper")
    self.split_option = options.get("split", "paper")
    need_partition = self.split_option == "official"
    if data_dir is None:
      self._source = _tfds_source(self.crop)
    else:
      self._source = _folder_source(data_dir, self.crop, need_partition)
      if os.path.isfile(os.path.join(data_dir, SYNTHETIC_MARKER)):
        self.provenance = SYNTHETIC_PROVENANCE
    self._rows = _split_rows(self._source, self.split_option, num_train, validation)
    self.captioner = None
    if caption_options is not None:
      self.captioner = self._make_captioner(caption_options)
    self.take_missing(options)

  def _make_captioner(self, caption_options) -> captioning.Captioner:
    """Captions of the attributes (`captions.FACES`); the vocabulary from the training
    captions, every training face under every template."""
    rows = self._source.attributes[self._rows["train"]]
    corpus = captioning.every_caption(captions.FACES, rows)
    return captioning.Captioner(self.name, captions.FACES, caption_options, corpus)

  @property
  def modalities(self) -> Tuple[Modality, ...]:
    return self.captioned(
      (
        Modality("image", GAUSSIAN_FIXED, (IMAGE_SIZE, IMAGE_SIZE, 3), IMAGE),
        Modality("attributes", GAUSSIAN_FIXED, (NUM_ATTRIBUTES,), VECTOR),
      )
    )

  def num_examples(self, split: str) -> int:
    return len(self._rows.get(split, ()))

  def labels(self, split: str, num_examples: int) -> np.ndarray:
    """The 40 attributes in {-1, 1} of the first examples of `split`: what coherence reads
    off generated faces and attributes."""
    n = self.check_split(split, num_examples)
    return self._source.attributes[self._rows[split][:n]].astype(np.int64)

  def fingerprint(self, num_train: Optional[int] = None) -> str:
    rows = self._rows["train"][:num_train]
    return digest(self._source.image_content(rows), self._source.attributes[rows])

  def rows(self, split: str) -> np.ndarray:
    """The file-order row numbers (0-based) of `split`'s examples, in order."""
    return self._rows.get(split, np.zeros(0, np.int64))

  # --- tf.data -------------------------------------------------------------------------
  def _load(self, rows: np.ndarray) -> Callable[[tf.Tensor], Dict[str, tf.Tensor]]:
    """position in `rows` -> {"image": uint8 [64, 64, 3], "attributes": int8 [40]}."""
    rows_tensor = tf.constant(rows, tf.int64)
    attributes = tf.constant(self._source.attributes)
    load_image = self._source.load_image

    def load(position):
      row = tf.gather(rows_tensor, position)
      return {"image": load_image(row), "attributes": tf.gather(attributes, row)}

    return load

  def _to_model_range(self, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    out = {
      "image": to_unit_range(batch["image"]),
      "attributes": tf.cast(batch["attributes"], tf.float32),
    }
    if self.captioner is not None:
      tokens = self.captioner.tokens(out["attributes"], batch["template"])
      out = captioning.with_caption(out, self.captioner, tokens, self.labels_modality)
    present = missing.of_batch(batch)
    return out if present is None else missing.attach(out, present)

  def _uint8_dataset(self, split: str, batch_size: int, num_examples: Optional[int], seed: int = 0):
    """Batches of uint8 faces and int8 attributes of `split` in order (with each caption's
    template, fixed by `seed` and the example's index, where there are captions)."""
    n = self.check_split(split, num_examples)
    if batch_size < 1:
      raise DataError(f"batch size must be at least 1, got {batch_size}")
    load = self._load(self._rows[split])
    if self.captioner is not None:
      templates = self.captioner.eval_templates(n, seed)
      plain = load

      def load(position):  # pylint: disable=function-redefined
        return {**plain(position), "template": tf.gather(templates, position)}

    return (
      tf.data.Dataset.range(n)
      .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
      .batch(batch_size)
    )

  def train_dataset(self, batch_size: int, seed: int, start_epoch: int = 0) -> tf.data.Dataset:
    self.check_batch_size(batch_size)
    train_rows = self._rows["train"]
    num_examples = len(train_rows)
    per_epoch = self.steps_per_epoch(batch_size) * batch_size
    seed = int(seed)
    load = self._load(train_rows)
    captioner = self.captioner
    table = missing.as_tensors(self.presence(seed))

    def load_position(global_position):
      epoch = global_position // per_epoch
      epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
      position = tf.random.experimental.index_shuffle(
        global_position % per_epoch,
        seed=epoch_seed,
        max_index=tf.constant(num_examples - 1, tf.int64),
      )
      example = load(position)
      if captioner is not None:  # its template: a pure function of (seed, epoch, position)
        templates = captioner.train_templates(1, epoch_seed, global_position % per_epoch)
        example["template"] = templates[0]
      if table is not None:  # the example's masks, batched with it
        example[missing.PRESENT] = {k: tf.gather(held, position) for k, held in table.items()}
      return example

    return (
      tf.data.Dataset.counter(start=int(start_epoch) * per_epoch, dtype=tf.int64)
      .map(load_position, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
      .batch(batch_size, drop_remainder=True)
      .map(self._to_model_range)
      .prefetch(tf.data.AUTOTUNE)
    )

  def eval_dataset(
    self, split: str, batch_size: int, seed: int = 0, num_examples: Optional[int] = None
  ) -> tf.data.Dataset:
    # The seed picks the captions' templates, where there are captions; nothing else is random.
    return (
      self._uint8_dataset(split, batch_size, num_examples, seed)
      .map(self._to_model_range)
      .prefetch(tf.data.AUTOTUNE)
    )

  def display_images(self, split: str, num_examples: int, seed: int = 0) -> np.ndarray:
    batches = [
      batch["image"] for batch in self._uint8_dataset(split, 256, num_examples).as_numpy_iterator()
    ]
    return np.concatenate(batches)

  def metadata(self, split: str, num_examples: int) -> Dict[str, np.ndarray]:
    n = self.check_split(split, num_examples)
    values = self._source.attributes[self._rows[split][:n]].astype(np.int64)
    out = {name: values[:, column] for column, name in enumerate(ATTRIBUTE_NAMES)}
    if self.captioner is not None:
      out[captioning.CAPTION] = self.captioner.held_out_texts(values, self.num_examples(split))
    return out
