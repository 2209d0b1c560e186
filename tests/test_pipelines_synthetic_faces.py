"""Tests for pipelines.synthetic_faces: the SYNTHETIC CelebA stand-in (not CelebA data)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines import celeba
from pipelines import synthetic_faces as sf

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


def column(attributes: np.ndarray, name: str) -> np.ndarray:
  return attributes[:, sf.COLUMN[name]] > 0


@pytest.fixture(scope="module")
def sampled() -> np.ndarray:
  return sf.sample_attributes(3000, np.random.default_rng(7))


def test_attribute_names_are_celebas_in_order() -> None:
  assert sf.ATTRIBUTE_NAMES == celeba.ATTRIBUTE_NAMES
  assert len(sf.RENDERED) >= 12
  assert set(sf.RENDERED).isdisjoint(sf.NOT_RENDERED)
  assert set(sf.RENDERED) | set(sf.NOT_RENDERED) == set(sf.ATTRIBUTE_NAMES)


def test_sampler_imbalance_is_celeba_like() -> None:
  """A few hundred draws: rare attributes rare, common ones common (wide margins)."""
  attributes = sf.sample_attributes(600, np.random.default_rng(0))
  assert attributes.shape == (600, 40) and attributes.dtype == np.int8
  assert set(np.unique(attributes)) == {-1, 1}
  expected = {
    "Eyeglasses": (0.03, 0.11),
    "Wearing_Hat": (0.02, 0.09),
    "Bald": (0.0, 0.05),
    "Smiling": (0.40, 0.56),
    "Male": (0.35, 0.50),
    "Young": (0.70, 0.85),
    "No_Beard": (0.78, 0.93),
    "Wearing_Lipstick": (0.38, 0.54),
    "Pale_Skin": (0.01, 0.08),
  }
  for name, (low, high) in expected.items():
    frequency = column(attributes, name).mean()
    assert low <= frequency <= high, (name, frequency)


def test_sampler_keeps_attributes_consistent(sampled) -> None:
  male, bald = column(sampled, "Male"), column(sampled, "Bald")
  colours = np.stack([column(sampled, name) for name in sf._HAIR_COLOURS], 1)
  assert bald.any() and not (bald & ~male).any()
  assert not (bald & column(sampled, "Bangs")).any()
  assert not (bald[:, None] & colours).any()
  assert colours.sum(axis=1).max() == 1
  facial_hair = column(sampled, "Mustache") | column(sampled, "Goatee")
  assert not (facial_hair & ~male).any()
  assert not (facial_hair & column(sampled, "No_Beard")).any()
  assert not (~column(sampled, "No_Beard") & ~male).any()
  assert column(sampled, "Wearing_Lipstick")[male].mean() < 0.05
  assert column(sampled, "Wearing_Lipstick")[~male].mean() > 0.6
  young = column(sampled, "Young")
  gray = column(sampled, "Gray_Hair")
  assert gray[~young].mean() > 3 * gray[young].mean()


def variants(name_on: str, name_off: str = None, base: dict = None, count: int = 12):
  """Two attribute tables that differ only in the given columns (same faces otherwise)."""
  row = np.full(40, -1, np.int8)
  for name in ("Young", "No_Beard", *(base or {})):
    row[sf.COLUMN[name]] = 1
  on, off = np.tile(row, (count, 1)), np.tile(row, (count, 1))
  on[:, sf.COLUMN[name_on]] = 1
  if name_off:
    off[:, sf.COLUMN[name_off]] = 1
  return (
    sf.render_faces(on, np.random.default_rng(5)).astype(np.float32),
    sf.render_faces(off, np.random.default_rng(5)).astype(np.float32),
  )


def test_hair_colour_is_visible() -> None:
  blond, black = variants("Blond_Hair", "Black_Hair")
  top_of_head = (slice(None), slice(56, 80), slice(70, 108))
  assert blond[top_of_head].mean() > black[top_of_head].mean() + 100
  bald, brown = variants("Bald", "Brown_Hair", base={"Male": 1})
  skin = bald[:, 125:135, 80:98].mean(axis=(1, 2))
  scalp = bald[:, 56:80, 70:108].mean(axis=(1, 2))
  assert (
    np.abs(scalp - skin).mean() < np.abs(brown[:, 56:80, 70:108].mean(axis=(1, 2)) - skin).mean()
  )


def test_eyeglasses_add_dark_pixels_around_the_eyes() -> None:
  glasses, plain = variants("Eyeglasses")
  eyes = (slice(None), slice(95, 128), slice(52, 126))
  dark_with = (glasses[eyes].mean(axis=-1) < 70).mean()
  dark_without = (plain[eyes].mean(axis=-1) < 70).mean()
  assert dark_with > dark_without + 0.03


def test_lipstick_smile_and_hat_are_visible() -> None:
  lipstick, plain = variants("Wearing_Lipstick")
  mouth = (slice(None), slice(148, 166), slice(74, 104))
  redness = lambda images: (images[mouth][..., 0] - images[mouth][..., 1]).mean()  # noqa: E731
  assert redness(lipstick) > redness(plain) + 15
  smiling, neutral = variants("Smiling")
  assert np.abs(smiling - neutral)[:, 148:168, 70:108].mean() > 8
  hat, bare = variants("Wearing_Hat")
  assert np.abs(hat - bare)[:, 40:95].mean() > 5 * np.abs(hat - bare)[:, 140:].mean() + 1


def test_generate_writes_celebas_layout(tmp_path: Path) -> None:
  attributes = sf.generate(tmp_path / "a", 40, seed=3)
  image_dir = tmp_path / "a" / sf.IMAGE_DIR
  names = sorted(os.listdir(image_dir))
  assert names == [f"{i:06d}.jpg" for i in range(1, 41)]
  with Image.open(image_dir / "000001.jpg") as image:
    assert image.format == "JPEG" and image.size == (178, 218) and image.mode == "RGB"
  lines = (tmp_path / "a" / sf.ATTRIBUTE_FILE).read_text().splitlines()
  assert lines[0] == "40" and lines[1].split() == list(celeba.ATTRIBUTE_NAMES)
  assert lines[2].startswith("000001.jpg ") and "  1" in lines[2] + lines[3] + lines[4]
  names_read, values = celeba.read_attribute_file(tmp_path / "a" / sf.ATTRIBUTE_FILE)
  assert names_read == names and np.array_equal(values, attributes)
  partition = celeba.read_partition_file(tmp_path / "a" / sf.PARTITION_FILE, names)
  assert np.bincount(partition).tolist() == [32, 4, 4]
  assert np.all(np.diff(partition) >= 0)  # contiguous blocks, as in CelebA
  # A pure function of the seed.
  again = sf.generate(tmp_path / "b", 40, seed=3)
  assert np.array_equal(again, attributes)
  for name in ("000001.jpg", "000040.jpg"):
    assert (image_dir / name).read_bytes() == (tmp_path / "b" / sf.IMAGE_DIR / name).read_bytes()
  other = sf.generate(tmp_path / "c", 4, seed=4)
  assert not np.array_equal(other, attributes[:4])


def test_generate_writes_the_stand_in_marker(tmp_path: Path) -> None:
  """The marker (not in CelebA's release) says the folder is synthetic; the loader reads it."""
  sf.generate(tmp_path, 3, seed=1)
  text = (tmp_path / sf.MARKER_FILE).read_text()
  assert "NOT CelebA" in text and "num_images=3" in text and "seed=1" in text
  assert sf.MARKER_FILE == celeba.SYNTHETIC_MARKER
