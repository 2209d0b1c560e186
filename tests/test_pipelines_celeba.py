"""Tests for pipelines.celeba: the folder and TFDS sources, splits, streams, bad data.

Folders are written by the SYNTHETIC generator (pipelines.synthetic_faces) in CelebA's
release layout; TFDS is exercised with tfds.testing.mock_data (no download here).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from jmvae_tf.core import files
from jmvae_tf.core.data import DataError
from pipelines import registry, synthetic_faces
from pipelines.celeba import (
  ATTRIBUTE_FILE,
  ATTRIBUTE_NAMES,
  CROP_BOXES,
  IMAGE_DIR,
  PARTITION_FILE,
  CelebADataSet,
  preprocess_image,
)

NUM_IMAGES = 50  # paper split: 45 train / 5 test; official: 40 / 5 / 5


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
  directory = tmp_path_factory.mktemp("celeba")
  synthetic_faces.generate(directory, NUM_IMAGES, seed=0)
  return directory


@pytest.fixture(scope="module")
def attributes(folder) -> np.ndarray:
  lines = (folder / ATTRIBUTE_FILE).read_text().splitlines()[2:]
  return np.array([[int(v) for v in line.split()[1:]] for line in lines])


@pytest.fixture(scope="module")
def data(folder) -> CelebADataSet:
  return CelebADataSet(data_dir=folder)


def take(dataset: tf.data.Dataset, num_batches: int = None) -> list:
  if num_batches is not None:
    dataset = dataset.take(num_batches)
  return list(dataset.as_numpy_iterator())


def concat(batches: list, key: str) -> np.ndarray:
  return np.concatenate([batch[key] for batch in batches])


# ------------------------------------------------------------------ the folder source


def test_modalities_and_registry(folder, data) -> None:
  assert data.name == "celeb_a" and data.architecture == "celeba_conv"
  assert [(m.name, m.kind, m.shape) for m in data.modalities] == [
    ("image", "gaussian_fixed", (64, 64, 3)),
    ("attributes", "gaussian_fixed", (40,)),
  ]
  assert registry.dataset_class("celeb_a") is CelebADataSet
  made = registry.make_dataset("celeb_a", data_dir=str(folder), options=["crop=center"])
  assert made.crop == "center" and made.num_examples("train") == 45


def test_eval_stream_shapes_ranges_and_attributes(data, attributes) -> None:
  batches = take(data.eval_dataset("test", batch_size=2))
  assert [len(batch["image"]) for batch in batches] == [2, 2, 1]  # last partial batch kept
  images, values = concat(batches, "image"), concat(batches, "attributes")
  assert images.shape == (5, 64, 64, 3) and images.dtype == np.float32
  assert -1.0 <= images.min() < -0.5 and 0.5 < images.max() <= 1.0
  assert values.dtype == np.float32
  np.testing.assert_array_equal(values, attributes[45:])  # the last 10%, in file order
  again = concat(take(data.eval_dataset("test", batch_size=5, seed=9)), "image")
  np.testing.assert_array_equal(again, images)
  first = take(data.eval_dataset("train", batch_size=3, num_examples=4))
  np.testing.assert_array_equal(concat(first, "attributes"), attributes[:4])


def test_display_images_and_metadata(data, attributes) -> None:
  pictures = data.display_images("test", 3)
  assert pictures.shape == (3, 64, 64, 3) and pictures.dtype == np.uint8
  images = concat(take(data.eval_dataset("test", batch_size=3, num_examples=3)), "image")
  np.testing.assert_allclose(pictures / 127.5 - 1.0, images, atol=1e-6)
  metadata = data.metadata("test", 3)
  assert list(metadata) == list(ATTRIBUTE_NAMES)
  for index, name in enumerate(ATTRIBUTE_NAMES):
    np.testing.assert_array_equal(metadata[name], attributes[45:48, index])
  with pytest.raises(DataError):
    data.metadata("test", 6)


def test_paper_split_sizes(folder) -> None:
  assert [
    CelebADataSet(data_dir=folder).num_examples(s) for s in ("train", "validation", "test")
  ] == [45, 0, 5]
  held = CelebADataSet(data_dir=folder, validation=True)
  assert [held.num_examples(s) for s in ("train", "validation", "test")] == [41, 4, 5]
  assert held.held_out_split() == "validation"
  np.testing.assert_array_equal(held.rows("validation"), np.arange(41, 45))
  limited = CelebADataSet(data_dir=folder, num_train=10, validation=True)
  assert [limited.num_examples(s) for s in ("train", "validation", "test")] == [10, 4, 5]
  np.testing.assert_array_equal(limited.rows("train"), np.arange(10))


def test_official_split_sizes(folder) -> None:
  official = CelebADataSet(data_dir=folder, split="official")
  assert [official.num_examples(s) for s in ("train", "validation", "test")] == [40, 0, 5]
  assert official.held_out_split() == "test"
  held = CelebADataSet(data_dir=folder, split="official", validation=True, num_train=7)
  assert [held.num_examples(s) for s in ("train", "validation", "test")] == [7, 5, 5]
  np.testing.assert_array_equal(held.rows("validation"), np.arange(40, 45))
  np.testing.assert_array_equal(held.rows("test"), np.arange(45, 50))


@pytest.mark.parametrize("num_train", [0, 46])
def test_num_train_out_of_range(folder, num_train) -> None:
  with pytest.raises(DataError, match="num_train"):
    CelebADataSet(data_dir=folder, num_train=num_train)


def test_options_are_checked(folder) -> None:
  with pytest.raises(DataError, match="crop"):
    CelebADataSet(data_dir=folder, crop="tight")
  with pytest.raises(DataError, match="no option"):
    CelebADataSet(data_dir=folder, colour="yes")
  center = CelebADataSet(data_dir=folder, crop="center", num_train=4)
  paper = CelebADataSet(data_dir=folder, num_train=4)
  assert (
    np.abs(center.display_images("train", 2).astype(int) - paper.display_images("train", 2)).mean()
    > 10
  )


def identify(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
  """The index in `reference` of each image (nearest; they are exact copies)."""
  distance = np.abs(images[:, None] - reference[None]).reshape(len(images), len(reference), -1)
  best = distance.max(axis=-1)
  assert np.all(best.min(axis=1) < 1e-6)
  return best.argmin(axis=1)


def test_train_stream_is_reproducible_resumable_and_a_permutation(data) -> None:
  train = concat(take(data.eval_dataset("train", batch_size=45)), "image")
  batches = take(data.train_dataset(batch_size=8, seed=3), 10)  # 5 steps per epoch
  assert all(batch["image"].shape == (8, 64, 64, 3) for batch in batches)
  assert all(batch["attributes"].shape == (8, 40) for batch in batches)
  first_epoch = identify(concat(batches[:5], "image"), train)
  second_epoch = identify(concat(batches[5:], "image"), train)
  assert len(set(first_epoch)) == 40 and len(set(second_epoch)) == 40
  assert not np.array_equal(first_epoch, second_epoch)
  again = take(data.train_dataset(batch_size=8, seed=3), 10)
  for one, other in zip(batches, again):
    np.testing.assert_array_equal(one["image"], other["image"])
  resumed = take(data.train_dataset(batch_size=8, seed=3, start_epoch=1), 5)
  for one, other in zip(batches[5:], resumed):
    np.testing.assert_array_equal(one["image"], other["image"])
    np.testing.assert_array_equal(one["attributes"], other["attributes"])
  other_seed = identify(concat(take(data.train_dataset(batch_size=8, seed=4), 5), "image"), train)
  assert not np.array_equal(other_seed, first_epoch)


def test_train_stream_edge_cases(folder) -> None:
  single = CelebADataSet(data_dir=folder, num_train=1)
  batches = take(single.train_dataset(batch_size=1, seed=0), 3)
  assert all(np.array_equal(batches[0]["image"], b["image"]) for b in batches)
  with pytest.raises(DataError, match="larger"):
    single.train_dataset(batch_size=2, seed=0)


# ------------------------------------------------------------------ preprocess_image


def test_preprocess_image_matches_the_pipeline_and_handles_other_sizes(folder, data) -> None:
  encoded = (folder / IMAGE_DIR / "000046.jpg").read_bytes()  # the first test image
  expected = concat(take(data.eval_dataset("test", batch_size=1, num_examples=1)), "image")[0]
  np.testing.assert_allclose(preprocess_image(encoded).numpy(), expected, atol=1e-6)
  pixels = tf.io.decode_jpeg(encoded).numpy()
  larger = tf.cast(tf.image.resize(pixels, [436, 356]), tf.uint8)
  assert np.abs(preprocess_image(larger).numpy() - expected).mean() < 0.03
  # A wider picture: its centred 178:218 region is used, the same face box inside it.
  padded = np.pad(pixels, [(0, 0), (40, 40), (0, 0)])
  assert np.abs(preprocess_image(tf.io.encode_png(padded)).numpy() - expected).mean() < 0.02
  gray = preprocess_image(pixels[..., 0], crop="center").numpy()
  assert gray.shape == (64, 64, 3) and np.all(gray[..., 0] == gray[..., 2])
  assert -1.0 <= gray.min() and gray.max() <= 1.0
  rgba = np.concatenate([pixels, np.full_like(pixels[..., :1], 255)], axis=-1)
  np.testing.assert_array_equal(preprocess_image(rgba).numpy(), preprocess_image(pixels).numpy())
  with pytest.raises(DataError):
    preprocess_image(pixels, crop="tight")
  assert CROP_BOXES["center"] == (35, 15, 148, 148)


# ------------------------------------------------------------------ bad data


def replace_line(path: Path, number: int, text: str) -> None:
  lines = path.read_text().splitlines()
  lines[number] = text
  path.write_text("\n".join(lines) + "\n")


def break_attribute_file(d: Path) -> None:
  (d / ATTRIBUTE_FILE).unlink()


def break_header_count(d: Path) -> None:
  replace_line(d / ATTRIBUTE_FILE, 1, " ".join(ATTRIBUTE_NAMES[:39]))


def break_header_name(d: Path) -> None:
  replace_line(d / ATTRIBUTE_FILE, 1, " ".join(ATTRIBUTE_NAMES).replace("Smiling", "Smile"))


def break_value(d: Path) -> None:
  replace_line(d / ATTRIBUTE_FILE, 8, "000007.jpg" + "  0" + " -1" * 39)


def break_row_length(d: Path) -> None:
  replace_line(d / ATTRIBUTE_FILE, 8, "000007.jpg" + " -1" * 39)


def break_count_line(d: Path) -> None:
  replace_line(d / ATTRIBUTE_FILE, 0, str(NUM_IMAGES + 1))


def break_partition_count(d: Path) -> None:
  lines = (d / PARTITION_FILE).read_text().splitlines()
  (d / PARTITION_FILE).write_text("\n".join(lines[:-1]) + "\n")


def break_partition_name(d: Path) -> None:
  replace_line(d / PARTITION_FILE, 4, "000099.jpg 0")


def break_partition_value(d: Path) -> None:
  replace_line(d / PARTITION_FILE, 4, "000005.jpg 3")


def break_missing_image(d: Path) -> None:
  (d / IMAGE_DIR / "000007.jpg").unlink()


def break_truncated_jpeg(d: Path) -> None:
  path = d / IMAGE_DIR / "000003.jpg"
  path.write_bytes(path.read_bytes()[:1500])


def break_not_a_jpeg(d: Path) -> None:
  (d / IMAGE_DIR / "000003.jpg").write_bytes(b"<html>quota exceeded</html>")


def break_empty_jpeg(d: Path) -> None:
  (d / IMAGE_DIR / "000003.jpg").write_bytes(b"")


BAD_CASES = [
  (break_attribute_file, {}, rf"{ATTRIBUTE_FILE}: missing attribute file"),
  (break_header_count, {}, rf"{ATTRIBUTE_FILE}: line 2 .* 40 attribute names, it has 39"),
  (break_header_name, {}, rf"{ATTRIBUTE_FILE}: line 2: attribute 32 is 'Smile'"),
  (break_value, {}, rf"{ATTRIBUTE_FILE}: line 9 \(000007.jpg\): 5_o_Clock_Shadow is '0'"),
  (break_row_length, {}, rf"{ATTRIBUTE_FILE}: line 9: expected a file name and 40 values"),
  (break_count_line, {}, rf"{ATTRIBUTE_FILE}: line 1 says 51 images but the file lists 50"),
  (break_partition_count, {}, rf"{PARTITION_FILE}: lists 49 images but {ATTRIBUTE_FILE}"),
  (break_partition_name, {}, rf"{PARTITION_FILE}: line 5 is 000099.jpg, but"),
  (break_partition_value, {}, rf"{PARTITION_FILE}: line 5: expected"),
  (break_missing_image, {}, r"000007.jpg: listed in .* but missing"),
  (break_truncated_jpeg, {}, r"000003.jpg: truncated or corrupt JPEG"),
  (break_not_a_jpeg, {}, r"000003.jpg: not a JPEG"),
  (break_empty_jpeg, {}, r"000003.jpg: not a JPEG"),
  (
    lambda d: (d / PARTITION_FILE).unlink(),
    {"split": "official"},
    rf"{PARTITION_FILE}: missing \(split=official needs it\)",
  ),
]


@pytest.mark.parametrize(
  "breaker, options, message", BAD_CASES, ids=[case[0].__name__ for case in BAD_CASES]
)
def test_bad_data_stops_the_constructor(folder, tmp_path, breaker, options, message) -> None:
  broken = tmp_path / "broken"
  shutil.copytree(folder, broken)
  breaker(broken)
  with pytest.raises(DataError, match=message) as raised:
    CelebADataSet(data_dir=broken, **options)
  assert "\n" not in str(raised.value)


def test_without_partition_file_the_paper_split_still_works(folder, tmp_path) -> None:
  copy = tmp_path / "copy"
  shutil.copytree(folder, copy)
  (copy / PARTITION_FILE).unlink()
  assert CelebADataSet(data_dir=copy).num_examples("train") == 45


def test_the_synthetic_stand_in_is_labelled_by_its_marker(folder, data, tmp_path) -> None:
  """The generator's folder says it is synthetic; the same files without the marker (as a
  real CelebA folder) carry no label."""
  assert data.provenance == "synthetic faces (not CelebA)"
  copy = tmp_path / "copy"
  shutil.copytree(folder, copy)
  (copy / synthetic_faces.MARKER_FILE).unlink()
  assert CelebADataSet(data_dir=copy).provenance == ""


def test_missing_directory(tmp_path) -> None:
  with pytest.raises(DataError, match="does not exist"):
    CelebADataSet(data_dir=tmp_path / "nowhere")


# ------------------------------------------------------------------ TFDS


def test_tfds_source_with_mock_data() -> None:
  import tensorflow_datasets as tfds

  with tfds.testing.mock_data(num_examples=10):
    paper = CelebADataSet(validation=True)
    official = CelebADataSet(split="official", validation=True, num_train=6)
    expected = list(tfds.load("celeb_a", split="test").take(3).as_numpy_iterator())
  assert [paper.num_examples(s) for s in ("train", "validation", "test")] == [25, 2, 3]
  assert [official.num_examples(s) for s in ("train", "validation", "test")] == [6, 10, 10]
  batch = take(paper.train_dataset(batch_size=4, seed=1), 1)[0]
  assert batch["image"].shape == (4, 64, 64, 3) and batch["attributes"].shape == (4, 40)
  assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0
  assert set(np.unique(batch["attributes"])) <= {-1.0, 1.0}
  again = take(paper.train_dataset(batch_size=4, seed=1), 1)[0]
  np.testing.assert_array_equal(batch["image"], again["image"])
  # Official test = TFDS's test split, attributes in CelebA's order.
  metadata = official.metadata("test", 3)
  for name in ATTRIBUTE_NAMES:
    np.testing.assert_array_equal(
      metadata[name], [1 if example["attributes"][name] else -1 for example in expected]
    )
  pictures = official.display_images("test", 3)
  assert pictures.shape == (3, 64, 64, 3) and pictures.dtype == np.uint8
  first = preprocess_image(expected[0]["image"]).numpy()
  np.testing.assert_allclose(pictures[0] / 127.5 - 1.0, first, atol=1e-6)
  evaluated = concat(take(official.eval_dataset("test", batch_size=4)), "attributes")
  assert evaluated.shape == (10, 40)


_DOWNLOAD_SCRIPT = textwrap.dedent("""
  import json, socket
  socket.setdefaulttimeout(10)
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core.download import downloader
  downloader.MAX_RETRIES = 0  # fail at the first refused connection, not after minutes
  try:
    tfds.builder("celeb_a", data_dir=%r).download_and_prepare()
    print(json.dumps({"error": None}))
  except BaseException as error:
    print(json.dumps({"error": type(error).__name__,
                      "mro": [c.__name__ for c in type(error).__mro__],
                      "message": str(error)[:500]}))
""")


def test_real_tfds_download_fails_only_for_lack_of_network(tmp_path) -> None:
  """Without a network, the real builder must get as far as fetching its files: any
  ImportError on the way means the TFDS path is broken, not merely offline."""
  try:
    result = subprocess.run(
      [sys.executable, "-c", _DOWNLOAD_SCRIPT % str(tmp_path)],
      capture_output=True,
      text=True,
      timeout=60,
    )
  except subprocess.TimeoutExpired:
    pytest.skip("the TFDS download attempt did not end within 60 s")
  report = json.loads(result.stdout.strip().splitlines()[-1])
  if report["error"] is None:
    pytest.skip("the network is reachable: CelebA was downloaded")
  assert "ImportError" not in report["mro"], (
    f"TFDS celeb_a cannot even start its download: {report['error']}: {report['message']}"
  )
  network = {"ConnectionError", "OSError", "URLError", "DownloadError", "Timeout"}
  assert network & set(report["mro"]) or "drive.google.com" in report["message"], report


# --- layouts, damaged files and the fingerprint (issue 22) ----------------------------------


def test_kaggles_layout_and_a_byte_order_mark_read_as_the_release(folder, tmp_path) -> None:
  """The same faces written in Kaggle's layout (CSV files, images one folder deeper), with a
  UTF-8 byte-order mark on both CSV files, give the release layout's examples exactly."""
  kaggle = tmp_path / "kaggle"
  synthetic_faces.generate(kaggle, NUM_IMAGES, seed=0, layout="kaggle")
  assert (kaggle / IMAGE_DIR / IMAGE_DIR / "000001.jpg").is_file()
  for name in ("list_attr_celeba.csv", "list_eval_partition.csv"):
    path = kaggle / name
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
  for split in ("paper", "official"):
    release = CelebADataSet(data_dir=folder, split=split)
    other = CelebADataSet(data_dir=kaggle, split=split)
    for name in ("train", "test"):
      assert other.num_examples(name) == release.num_examples(name)
      a, b = take(release.eval_dataset(name, 16)), take(other.eval_dataset(name, 16))
      for key in ("image", "attributes"):
        np.testing.assert_array_equal(concat(a, key), concat(b, key))
  assert other.fingerprint() == release.fingerprint()  # the same examples


def test_a_jpeg_damaged_inside_is_named_before_any_training(tmp_path) -> None:
  """Valid markers and 400 bytes of garbage in the middle pass the cheap check; decoding the
  faces once (the cache) finds it and names the file, in one line."""
  broken = tmp_path / "broken"
  synthetic_faces.generate(broken, 20, seed=3)
  path = broken / IMAGE_DIR / "000007.jpg"
  data = bytearray(path.read_bytes())
  middle = len(data) // 2
  data[middle : middle + 400] = bytes((i * 37) % 256 for i in range(400))
  path.write_bytes(bytes(data))
  with pytest.raises(DataError) as refused:
    CelebADataSet(data_dir=broken)
  message = str(refused.value)
  assert message.startswith(f"{path}: a damaged JPEG that cannot be decoded ("), message
  assert "\n" not in message


def test_the_faces_are_decoded_once_and_the_cache_follows_the_files(folder, tmp_path, monkeypatch):
  """A second construction reads the cache instead of decoding; a changed file is a new cache
  entry; with the cache off nothing is kept. The faces are the same either way."""
  from pipelines import celeba

  monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "cache"))
  decoded = []
  real = celeba.decode_faces
  monkeypatch.setattr(celeba, "decode_faces", lambda *a: decoded.append(1) or real(*a))
  first = CelebADataSet(data_dir=folder)
  again = CelebADataSet(data_dir=folder)
  assert len(decoded) == 1 and len(list((tmp_path / "cache" / "celeba").glob("*.npy"))) == 1
  np.testing.assert_array_equal(
    concat(take(first.eval_dataset("test", 8)), "image"),
    concat(take(again.eval_dataset("test", 8)), "image"),
  )
  CelebADataSet(data_dir=folder, crop="center")  # another crop: another entry
  assert len(decoded) == 2 and len(list((tmp_path / "cache" / "celeba").glob("*.npy"))) == 2
  monkeypatch.setenv(files.CACHE_ENV, "off")
  CelebADataSet(data_dir=folder)
  assert len(decoded) == 3 and len(list((tmp_path / "cache" / "celeba").glob("*"))) == 2


def test_the_fingerprint_follows_the_training_examples_not_their_place(folder, tmp_path) -> None:
  """A moved copy has the fingerprint of the original; a training image rewritten, or other
  attributes, change it; a test image does not (it is not trained on)."""
  original = CelebADataSet(data_dir=folder).fingerprint()
  copy = tmp_path / "copy"
  shutil.copytree(folder, copy)
  assert CelebADataSet(data_dir=copy).fingerprint() == original
  last = copy / IMAGE_DIR / f"{NUM_IMAGES:06d}.jpg"  # the paper split's last: a test face
  last.write_bytes(last.read_bytes()[:-2] + b"\x00\xff\xd9")
  assert CelebADataSet(data_dir=copy).fingerprint() == original
  first = copy / IMAGE_DIR / "000001.jpg"
  first.write_bytes(first.read_bytes()[:-2] + b"\x00\xff\xd9")
  assert CelebADataSet(data_dir=copy).fingerprint() != original


# ------------------------------------------------------------------ captions of the attributes


@pytest.fixture(scope="module")
def captioned(folder) -> dict:
  """{mode: the synthetic faces with captions=mode}."""
  return {mode: CelebADataSet(data_dir=folder, captions=mode) for mode in ("instead", "added")}


def texts_of(data: CelebADataSet, batches: list) -> list:
  vocabulary = data.modalities[-1].text
  return [t for b in batches for t in vocabulary.decode_numpy(b["caption"])]


def nearest(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
  """The index in `reference` of each image (exact copies: squared distance ~0), by one
  matrix product rather than `identify`'s [N, M, pixels] array."""
  a = images.reshape(len(images), -1).astype(np.float64)
  b = reference.reshape(len(reference), -1).astype(np.float64)
  squared = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
  assert np.all(squared.min(axis=1) < 1e-6 * a.shape[1])
  return squared.argmin(axis=1)


def test_captions_instead_drop_the_attributes_and_added_keep_them(captioned, data) -> None:
  from jmvae_tf.core.text import Vocabulary
  from pipelines import captioning, captions

  instead, added = captioned["instead"], captioned["added"]
  assert [m.name for m in instead.modalities] == ["image", "caption"]
  assert [m.name for m in added.modalities] == ["image", "attributes", "caption"]
  rows = data.labels("train", 45)
  corpus = captioning.every_caption(captions.FACES, rows)
  longest = max(len(t.split()) for t in corpus)
  expected = Vocabulary.build(corpus, longest + 1)
  assert instead.modalities[-1].text == added.modalities[-1].text == expected
  test = take(instead.eval_dataset("test", 5))
  assert set(test[0]) == {"image", "caption"}
  # the faces are the same as without captions
  np.testing.assert_array_equal(
    test[0]["image"], concat(take(data.eval_dataset("test", 5)), "image")
  )
  assert data.read_text("caption", ["a smiling man"]) is None
  assert instead.read_text("attributes", ["a smiling man"]) is None


def test_each_caption_states_the_faces_attributes_where_it_was_not_cut(captioned) -> None:
  data = captioned["added"]
  max_words = data.modalities[-1].shape[0] - 1
  checked = 0
  for split, n in (("train", 45), ("test", 5)):
    batches = take(data.eval_dataset(split, 8))
    assert set(batches[0]) == {"image", "attributes", "caption"}
    full = list(data.metadata(split, n)["caption"])
    texts = texts_of(data, batches)
    assert texts == [" ".join(t.split()[:max_words]) for t in full]
    whole = np.array([len(t.split()) <= max_words for t in full])
    parsed = data.read_text("caption", texts)
    np.testing.assert_array_equal(parsed[whole], data.labels(split, n)[whole])
    np.testing.assert_array_equal(parsed[whole], concat(batches, "attributes")[whole])
    checked += whole.sum()
  assert checked >= 45  # every training caption fits: T is the training captions' longest
  batches = take(data.train_dataset(8, seed=1), 10)
  assert set(batches[0]) == {"image", "attributes", "caption"}
  texts = texts_of(data, batches)
  whole = np.array([len(t.split()) < max_words for t in texts])
  parsed = data.read_text("caption", texts)
  np.testing.assert_array_equal(parsed[whole], concat(batches, "attributes")[whole])
  assert whole.mean() > 0.5


def test_face_captions_are_fixed_by_the_seed_and_drawn_afresh_each_epoch(captioned) -> None:
  data = captioned["instead"]
  held = take(data.eval_dataset("train", 45, seed=0))
  whole = texts_of(data, held)
  assert texts_of(data, take(data.eval_dataset("train", 7, num_examples=20))) == whole[:20]
  other = texts_of(data, take(data.eval_dataset("train", 45, seed=1)))
  assert other != whole
  # the seed changes the wording, not what is said
  male = ATTRIBUTE_NAMES.index("Male")
  np.testing.assert_array_equal(
    data.read_text("caption", other)[:, male], data.labels("train", 45)[:, male]
  )
  batches = take(data.train_dataset(batch_size=8, seed=3), 10)  # 5 steps per epoch
  resumed = take(data.train_dataset(batch_size=8, seed=3, start_epoch=1), 5)
  assert texts_of(data, resumed) == texts_of(data, batches[5:])
  # one face in two epochs: its image (told apart exactly) gets another template in some
  train = concat(held, "image")
  first, second = ({}, {})
  for epoch, seen in ((batches[:5], first), (batches[5:], second)):
    for index, text in zip(nearest(concat(epoch, "image"), train), texts_of(data, epoch)):
      seen[index] = text
  both = set(first) & set(second)
  assert len(both) >= 30 and sum(first[i] != second[i] for i in both) >= 10


def test_the_metadata_has_the_attributes_and_the_seed_0_captions(captioned, attributes) -> None:
  from pipelines import captions

  data = captioned["added"]
  metadata = data.metadata("test", 5)
  assert list(metadata) == list(ATTRIBUTE_NAMES) + ["caption"]
  templates = data.captioner.eval_templates(5, 0).numpy()
  assert list(metadata["caption"]) == [
    captions.FACES.caption(a, t) for a, t in zip(attributes[45:], templates)
  ]


def test_a_runs_readers_tokenise_its_captions_with_the_runs_vocabulary(folder):
  """A run trained on fewer faces (--num_train) built its vocabulary from fewer captions: its
  words' counts, so their order (and T), differ from the whole folder's. Its readers
  (evaluate, figures, ...) adopt the run's vocabulary (Run.check_text) instead of rebuilding
  theirs, so test captions are tokenised as in training; a data set that cannot adopt it
  (the files kind) is refused in one line naming the options to give."""
  from jmvae_tf.core.own_data import OwnDataSet
  from jmvae_tf.training import run_dir

  trained = CelebADataSet(data_dir=folder, num_train=10, captions="instead")
  everything = CelebADataSet(data_dir=folder, captions="instead")
  ours, theirs = trained.modalities[-1], everything.modalities[-1]
  assert ours.vocabulary != theirs.vocabulary  # ten faces' words in another order
  run = types.SimpleNamespace(
    config=types.SimpleNamespace(modalities=trained.modalities), model_dir="RUN"
  )
  run_dir.Run.check_text(run, everything, "--data_dir=faces")
  assert everything.modalities[-1] == ours
  n = everything.num_examples("test")
  batch = next(iter(everything.eval_dataset("test", n, seed=3)))
  captions = everything.captioner.held_out_texts(everything.labels("test", n), n, seed=3)
  expected = ours.text.encoder()(tf.constant(captions)).numpy()
  np.testing.assert_array_equal(batch["caption"].numpy(), expected)
  # a vocabulary the data set cannot adopt: refused, naming the options that rebuild it
  words = np.array(["a red cat", "a dog", "a red dog", "two cats", "a cat"])
  kinds = {"caption": "text", "label": "class"}
  labels = np.array(["x", "y", "x", "y", "x"])
  small = OwnDataSet(kinds, train={"caption": words, "label": labels}, num_train=2)
  whole = OwnDataSet(kinds, train={"caption": words, "label": labels})
  assert small.modalities[0] != whole.modalities[0]
  run.config.modalities = small.modalities
  with pytest.raises(
    DataError, match="another vocabulary .* --num_train or --validation.* cannot read"
  ):
    run_dir.Run.check_text(run, whole, "--data_dir=mine")
