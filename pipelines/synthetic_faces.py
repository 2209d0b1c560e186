"""SYNTHETIC stand-in for CelebA: cartoon faces drawn with numpy, in CelebA's file layout.

Nothing here is CelebA, and no number measured on these images may be presented as a
CelebA result. The generator exists so that the CelebA pipeline, models and runners can be
built, tested and demonstrated where the real data cannot be downloaded: it writes exactly
the files of CelebA's release,

  img_align_celeba/000001.jpg ...   178x218 JPEGs, the face where the aligned set has it
                                    (eyes near y = 111, mouth near y = 152)
  list_attr_celeba.txt              count, the 40 names, `000001.jpg -1  1 ...` rows
  list_eval_partition.txt           `000001.jpg 0`: contiguous 80/10/10 train/val/test
  SYNTHETIC_FACES.txt               a marker that CelebA's release does not have

so `pipelines.celeba.CelebADataSet(data_dir=...)` reads it unchanged, and by the marker knows
it is the stand-in, so that reports (runners.evaluate) say so beside the paper's numbers.

Faces vary in pose (offset, tilt), size, skin, background and clothing colour, a lighting
gradient and pixel noise. These attributes are drawn visibly, under their CelebA names
(`RENDERED`): Bald, Bangs, Big_Nose, Black_Hair, Blond_Hair, Blurry, Brown_Hair,
Bushy_Eyebrows, Chubby, Eyeglasses, Goatee, Gray_Hair, Heavy_Makeup, Male,
Mouth_Slightly_Open, Mustache, Narrow_Eyes, No_Beard, Pale_Skin, Rosy_Cheeks, Smiling,
Wearing_Earrings, Wearing_Hat, Wearing_Lipstick, Wearing_Necktie, Young.
They are sampled with CelebA-like imbalance and dependencies (`sample_attributes`): e.g.
Eyeglasses ~6%, Wearing_Hat ~5%, Bald ~2% (men only), Smiling ~48%, Male ~42%; a bald face
has no bangs and no hair colour; the hair colours exclude each other (none of them is also
possible: auburn or other hair); lipstick, earrings and heavy make-up mostly on women;
mustaches, goatees and beards only on men, and No_Beard is -1 exactly when one is drawn;
grey hair mostly on the not Young, who get wrinkles. The target frequencies are rough
approximations chosen to resemble CelebA's, not measurements.

Not rendered (sampled independently, each with a CelebA-like frequency, so a model cannot
learn them from the picture): 5_o_Clock_Shadow, Arched_Eyebrows, Attractive,
Bags_Under_Eyes, Big_Lips, Double_Chin, High_Cheekbones, Oval_Face, Pointy_Nose,
Receding_Hairline, Sideburns, Straight_Hair, Wavy_Hair, Wearing_Necklace.

Usage: python -m runners.synthetic_faces --output_dir=DIR --num_images=N [--seed=S]
Everything is a pure function of the seed; images are drawn and written in batches, so
memory stays small for any N (about 1,000 images take a few seconds on one core).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np

from pipelines.celeba_attributes import (
  ATTRIBUTE_FILE,
  ATTRIBUTE_NAMES,
  IMAGE_DIR,
  KAGGLE_ATTRIBUTE_FILE,
  KAGGLE_PARTITION_FILE,
  PARTITION_FILE,
)

COLUMN = {name: index for index, name in enumerate(ATTRIBUTE_NAMES)}

# Frequencies of the columns that are not drawn, chosen to resemble CelebA's.
NOT_RENDERED: Dict[str, float] = {
  "5_o_Clock_Shadow": 0.11,
  "Arched_Eyebrows": 0.27,
  "Attractive": 0.51,
  "Bags_Under_Eyes": 0.20,
  "Big_Lips": 0.24,
  "Double_Chin": 0.05,
  "High_Cheekbones": 0.45,
  "Oval_Face": 0.28,
  "Pointy_Nose": 0.28,
  "Receding_Hairline": 0.08,
  "Sideburns": 0.06,
  "Straight_Hair": 0.21,
  "Wavy_Hair": 0.32,
  "Wearing_Necklace": 0.12,
}
RENDERED: Tuple[str, ...] = tuple(name for name in ATTRIBUTE_NAMES if name not in NOT_RENDERED)

HEIGHT, WIDTH = 218, 178
# Written beside CelebA's files; the loader labels a folder holding it as the stand-in.
MARKER_FILE = "SYNTHETIC_FACES.txt"
LAYOUTS = ("release", "kaggle")
BATCH_SIZE = 32  # Images drawn at once; fixed, so the pictures do not depend on it.

PathLike = Union[str, os.PathLike]

# Face-local coordinates: u to the right, v down, origin at (x, y) = (89, 128) of the image.
_CENTER_X, _CENTER_Y = 89.0, 128.0
_EYE_U, _EYE_V = 19.5, -17.0
_MARGIN = 26  # pixels around a feature's nominal box that pose changes may move it into

_HAIR_COLOURS = {
  "Black_Hair": (28, 22, 20),
  "Blond_Hair": (226, 196, 122),
  "Brown_Hair": (112, 72, 42),
  "Gray_Hair": (172, 170, 168),
}
_OTHER_HAIR = np.array([[150, 62, 30], [176, 132, 74], [84, 50, 36], [196, 96, 44]], np.float32)
_SKIN = np.array(
  [[236, 196, 168], [224, 172, 138], [198, 146, 108], [160, 108, 74], [112, 74, 50]], np.float32
)
_PALE_SKIN = np.array([248, 226, 214], np.float32)


# --------------------------------------------------------------------------------------
# Attributes.


def sample_attributes(num_images: int, rng: np.random.Generator) -> np.ndarray:
  """int8 [N, 40] in {-1, 1}: CelebA's columns, with CelebA-like imbalance and the
  dependencies listed in the module docstring."""
  n = num_images

  def draw(p):
    return rng.random(n) < p

  male = draw(0.42)
  young = draw(np.where(male, 0.70, 0.83))
  bald = male & draw(np.where(young, 0.03, 0.09))
  # Hair colour: one of black, blond, brown, grey or none (other colours), never if bald.
  p_gray = np.where(young, 0.01, 0.16)
  p_blond = np.where(male, 0.04, 0.23) * (1 - p_gray)
  p_black = 0.24 * (1 - p_gray)
  p_brown = 0.21 * (1 - p_gray)
  cumulative = np.stack(
    [p_black, p_black + p_blond, p_black + p_blond + p_brown, p_black + p_blond + p_brown + p_gray],
    axis=1,
  )
  hair = (rng.random(n)[:, None] >= cumulative).sum(axis=1)  # 0..3 a colour, 4 none
  hair = np.where(bald, 4, hair)
  bangs = ~bald & draw(np.where(male, 0.09, 0.20))
  smiling = draw(0.48)
  mouth_open = draw(np.where(smiling, 0.70, 0.27))
  eyeglasses = draw(np.where(male, 0.11, 0.03))
  mustache = male & draw(0.10)
  goatee = male & draw(0.15)
  full_beard = male & ~mustache & ~goatee & draw(0.12)
  lipstick = draw(np.where(male, 0.01, 0.79))
  columns = {
    "Male": male,
    "Young": young,
    "Bald": bald,
    "Bangs": bangs,
    "Black_Hair": hair == 0,
    "Blond_Hair": hair == 1,
    "Brown_Hair": hair == 2,
    "Gray_Hair": hair == 3,
    "Smiling": smiling,
    "Mouth_Slightly_Open": mouth_open,
    "Eyeglasses": eyeglasses,
    "Mustache": mustache,
    "Goatee": goatee,
    "No_Beard": ~(mustache | goatee | full_beard),
    "Wearing_Lipstick": lipstick,
    "Heavy_Makeup": draw(np.where(lipstick, 0.78, 0.02)),
    "Wearing_Hat": draw(0.05),
    "Pale_Skin": draw(0.043),
    "Rosy_Cheeks": draw(np.where(male, 0.02, 0.10)),
    "Bushy_Eyebrows": draw(np.where(male, 0.25, 0.06)),
    "Blurry": draw(0.05),
    "Narrow_Eyes": draw(0.115),
    "Big_Nose": draw(np.where(male, 0.40, 0.11)),
    "Chubby": draw(np.where(male, 0.11, 0.02)),
    "Wearing_Necktie": male & draw(0.17),
    "Wearing_Earrings": draw(np.where(male, 0.02, 0.31)),
  }
  for name, frequency in NOT_RENDERED.items():
    columns[name] = draw(frequency)
  assert set(columns) == set(ATTRIBUTE_NAMES), set(ATTRIBUTE_NAMES) ^ set(columns)
  return np.stack([np.where(columns[name], 1, -1) for name in ATTRIBUTE_NAMES], 1).astype(np.int8)


# --------------------------------------------------------------------------------------
# Drawing.


class _Canvas:
  """A batch of images with each face's own coordinates; draws soft-edged shapes.

  Shapes are given in face-local units (u right, v down, origin near the nose bridge),
  which follow each face's offset, tilt and size; each is evaluated only in an image
  window around its nominal place, which keeps the drawing cheap.
  """

  def __init__(self, size: int, rng: np.random.Generator):
    self.size = size
    dx, dy = rng.normal(0.0, 3.0, size), rng.normal(0.0, 3.0, size)
    tilt = np.deg2rad(np.clip(rng.normal(0.0, 4.0, size), -10, 10))
    self.scale = rng.uniform(0.92, 1.08, size).astype(np.float32)[:, None, None]
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    x = x[None] - (_CENTER_X + dx.astype(np.float32))[:, None, None]
    y = y[None] - (_CENTER_Y + dy.astype(np.float32))[:, None, None]
    cos, sin = np.cos(tilt)[:, None, None], np.sin(tilt)[:, None, None]
    self.u = ((x * cos + y * sin) / self.scale).astype(np.float32)
    self.v = ((-x * sin + y * cos) / self.scale).astype(np.float32)
    self.edge = 1.0 / self.scale  # one pixel, in local units: the width of soft edges
    self.image = np.zeros((size, HEIGHT, WIDTH, 3), np.float32)

  @staticmethod
  def window(u0, u1, v0, v1) -> Tuple[slice, slice]:
    """Image rows and columns that may hold local box [u0, u1] x [v0, v1]."""
    rows = slice(
      max(0, int(_CENTER_Y + v0 * 1.1) - _MARGIN), min(HEIGHT, int(_CENTER_Y + v1 * 1.1) + _MARGIN)
    )
    cols = slice(
      max(0, int(_CENTER_X + u0 * 1.1) - _MARGIN), min(WIDTH, int(_CENTER_X + u1 * 1.1) + _MARGIN)
    )
    return rows, cols

  def local(self, win):
    return self.u[:, win[0], win[1]], self.v[:, win[0], win[1]], self.edge

  def ellipse(self, cu, cv, au, av, win=None):
    """Soft mask of the ellipse centred (cu, cv) with semi-axes (au, av)."""
    win = win or self.window(-abs(cu) - au, abs(cu) + au, cv - av, cv + av)
    u, v, edge = self.local(win)
    distance = np.sqrt(((u - cu) / au) ** 2 + ((v - cv) / av) ** 2)
    return win, np.clip((1.0 - distance) * (np.minimum(au, av) / edge) + 0.5, 0.0, 1.0)

  def box(self, u0, u1, v0, v1, win=None):
    win = win or self.window(u0, u1, v0, v1)
    u, v, edge = self.local(win)
    inside_u = np.minimum(u - u0, u1 - u) / edge + 0.5
    inside_v = np.minimum(v - v0, v1 - v) / edge + 0.5
    return win, np.clip(np.minimum(inside_u, inside_v), 0.0, 1.0)

  def band(self, curve, half, u_half, v_range, win=None):
    """Soft mask of |v - curve(u)| < half for |u| < u_half (a mouth, lips, a mustache)."""
    win = win or self.window(-u_half, u_half, *v_range)
    u, v, edge = self.local(win)
    across = (half - np.abs(v - curve(u))) / edge + 0.5
    along = (u_half - np.abs(u)) / edge + 0.5
    return win, np.clip(np.minimum(across, along), 0.0, 1.0)

  def paint(self, shape, colour, where=None, opacity=1.0):
    """Blends `colour` ([3] or [B, 3]) into the images through the mask `shape`, only
    for the faces where `where` ([B] bool) holds."""
    win, alpha = shape
    colour = np.broadcast_to(np.asarray(colour, np.float32), (self.size, 3))
    alpha = np.broadcast_to(alpha, (self.size,) + alpha.shape[1:])
    if where is None or np.all(where):
      target = self.image[:, win[0], win[1], :]
      target += (alpha * np.float32(opacity))[..., None] * (colour[:, None, None, :] - target)
      return
    chosen = np.flatnonzero(where)  # only the faces that have the feature: often few
    if not len(chosen):
      return
    target = self.image[chosen, win[0], win[1], :]
    target += (alpha[chosen] * np.float32(opacity))[..., None] * (
      colour[chosen, None, None, :] - target
    )
    self.image[chosen, win[0], win[1], :] = target


def _blur(images: np.ndarray, passes: int = 3) -> np.ndarray:
  """Separable [1, 4, 6, 4, 1] / 16 blur along rows and columns, edges repeated."""
  kernel = np.array([1, 4, 6, 4, 1], np.float32) / 16
  for _ in range(passes):
    for axis in (1, 2):
      padded = np.pad(
        images, [(0, 0)] + [(2, 2) if a == axis else (0, 0) for a in (1, 2)] + [(0, 0)], mode="edge"
      )
      length = images.shape[axis]
      images = sum(
        weight * np.take(padded, np.arange(k, k + length), axis=axis)
        for k, weight in enumerate(kernel)
      )
  return images


def render_faces(attributes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """uint8 [B, 218, 178, 3] faces showing the rendered columns of `attributes` [B, 40]."""
  attributes = np.asarray(attributes)
  size = len(attributes)
  has = {name: attributes[:, COLUMN[name]] > 0 for name in ATTRIBUTE_NAMES}
  male, bald = has["Male"], has["Bald"]
  canvas = _Canvas(size, rng)
  paint = canvas.paint

  def jitter(colour, amount):
    colour = np.broadcast_to(np.asarray(colour, np.float32), (size, 3))
    return np.clip(colour + rng.normal(0, amount, (size, 3)), 0, 255).astype(np.float32)

  # Colours.
  background = rng.uniform(30, 235, (size, 3)).astype(np.float32)
  skin_mix = rng.uniform(0, len(_SKIN) - 1, size)
  low = np.floor(skin_mix).astype(int)
  skin = _SKIN[low] + (skin_mix - low)[:, None] * (
    _SKIN[np.minimum(low + 1, len(_SKIN) - 1)] - _SKIN[low]
  )
  skin = np.where(has["Pale_Skin"][:, None], _PALE_SKIN, skin)
  skin = jitter(skin, 6)
  hair = _OTHER_HAIR[rng.integers(0, len(_OTHER_HAIR), size)]
  for name, colour in _HAIR_COLOURS.items():
    hair = np.where(has[name][:, None], np.asarray(colour, np.float32), hair)
  hair = jitter(hair, 8)
  brows = np.where(bald[:, None], np.float32([70, 50, 40]), hair * 0.7)
  shirt = rng.uniform(20, 235, (size, 3)).astype(np.float32)
  face_half_width = 41.0 + 3.0 * male + 6.0 * has["Chubby"]
  face_width = face_half_width[:, None, None]

  # Background with a vertical gradient.
  gradient = np.linspace(-1, 1, HEIGHT, dtype=np.float32)[None, :, None, None]
  canvas.image[:] = background[:, None, None, :] * (
    1 + 0.15 * gradient * rng.choice([-1, 1], (size, 1, 1, 1))
  )

  # Hair behind the head: long for women, a short cap for men, none when bald.
  long_hair = ~male & ~bald
  paint(canvas.ellipse(0, -12, 61, 76), hair, long_hair)
  paint(canvas.box(-59, 59, -12, 92), hair, long_hair)
  paint(canvas.ellipse(0, -24, 51, 52), hair, male & ~bald)

  # Shoulders, neck, ears, head.
  paint(canvas.box(-19, 19, 25, 90), skin * 0.88)
  paint(canvas.ellipse(0, 118, 92, 48), shirt)
  for side in (-1, 1):
    win = canvas.window(-60, 60, -20, 10)
    u, v, edge = canvas.local(win)
    ear = np.sqrt(((u - side * face_width) / 6.5) ** 2 + ((v + 4) / 11) ** 2)
    paint((win, np.clip((1 - ear) * 6.5 / edge + 0.5, 0, 1)), skin * 0.92)
  win = canvas.window(-50, 50, -75, 66)
  u, v, edge = canvas.local(win)
  face = np.sqrt((u / face_width) ** 2 + ((v - 4) / 60) ** 2)
  face_mask = np.clip((1 - face) * 41 / edge + 0.5, 0, 1)
  paint((win, face_mask), skin)
  paint(canvas.ellipse(0, -22, 45, 50), skin)  # the cranium, seen when bald

  # Age: forehead lines and smile folds on the not Young.
  old = ~has["Young"]
  for line_v in (-34.0, -37.5):
    paint(canvas.band(lambda u, c=line_v: c + 0.004 * u**2, 0.55, 15, (-40, -30)), skin * 0.7, old)
  for side in (-1, 1):
    paint(canvas.ellipse(side * 15.5, 18, 1.1, 9), skin * 0.72, old, 0.8)

  # Hair over the head: the hairline, and a fringe for Bangs; nothing when bald.
  win = canvas.window(-52, 52, -78, -20)
  u, v, edge = canvas.local(win)
  cap = np.clip((1 - np.sqrt((u / 49) ** 2 + ((v + 22) / 54) ** 2)) * 49 / edge + 0.5, 0, 1)
  hairline = (-40.0 + 3.0 * male)[:, None, None]
  paint((win, cap * np.clip((hairline - v) / edge + 0.5, 0, 1)), hair, ~bald)
  fringe = -24.0 + 2.5 * np.sin(u * 0.8)
  paint((win, cap * np.clip((fringe - v) / edge + 0.5, 0, 1)), hair, has["Bangs"])

  # Eyes: make-up, brows, whites, irises.
  eye_height = np.where(has["Narrow_Eyes"], 2.1, 4.0).astype(np.float32)[:, None, None]
  brow_height = np.where(has["Bushy_Eyebrows"], 3.9, 2.0).astype(np.float32)[:, None, None]
  brow_height = brow_height + 0.6 * male[:, None, None]
  iris = np.stack(
    [rng.uniform(30, 110, size), rng.uniform(20, 90, size), rng.uniform(10, 80, size)], 1
  )
  gaze = rng.normal(0, 1.0, size).astype(np.float32)[:, None, None]
  for side in (-1, 1):
    eye_u = side * _EYE_U
    paint(
      canvas.ellipse(eye_u, _EYE_V - 3.5, 10.5, 5.0),
      jitter((120, 60, 120), 25),
      has["Heavy_Makeup"],
      0.6,
    )
    win = canvas.window(eye_u - 14, eye_u + 14, -36, -10)
    u, v, edge = canvas.local(win)
    brow = np.sqrt(
      ((u - eye_u) / 11.5) ** 2 + ((v - (_EYE_V - 10) - 0.03 * (u - eye_u) ** 2) / brow_height) ** 2
    )
    paint((win, np.clip((1 - brow) * brow_height / edge + 0.5, 0, 1)), brows)
    white = np.sqrt(((u - eye_u) / 8.5) ** 2 + ((v - _EYE_V) / eye_height) ** 2)
    white_mask = np.clip((1 - white) * eye_height / edge + 0.5, 0, 1)
    paint((win, white_mask), (245, 245, 240))
    pupil = np.sqrt((u - eye_u - gaze) ** 2 + (v - _EYE_V) ** 2)
    paint((win, white_mask * np.clip((3.4 - pupil) / edge + 0.5, 0, 1)), iris)
    paint((win, white_mask * np.clip((1.5 - pupil) / edge + 0.5, 0, 1)), (10, 10, 10))

  # Nose.
  nose = np.where(has["Big_Nose"], 1.4, 1.0).astype(np.float32)
  nose_k = nose[:, None, None]
  win = canvas.window(-12, 12, -10, 22)
  u, v, edge = canvas.local(win)
  ridge = np.sqrt((u / (4.5 * nose_k)) ** 2 + ((v - 3) / (11 * nose_k)) ** 2)
  paint((win, np.clip((1 - ridge) * 4 / edge + 0.5, 0, 1)), skin * 0.82, None, 0.55)
  for side in (-1, 1):
    nostril = np.sqrt(
      ((u - side * 4.2 * nose_k) / (2.3 * nose_k)) ** 2 + ((v - 12 - 2 * (nose_k - 1)) / 1.4) ** 2
    )
    paint((win, np.clip((1 - nostril) * 1.4 / edge + 0.5, 0, 1)), skin * 0.45, None, 0.8)

  # Beards (men only, by construction of the attributes).
  beard = ~has["No_Beard"] & ~has["Mustache"] & ~has["Goatee"]
  win = canvas.window(-50, 50, 8, 66)
  u, v, edge = canvas.local(win)
  jaw = np.sqrt((u / face_width) ** 2 + ((v - 4) / 60) ** 2)
  jaw_mask = np.clip((1 - jaw) * 41 / edge + 0.5, 0, 1) * np.clip((v - 12) / 3, 0, 1)
  paint((win, jaw_mask), hair * 0.6, beard, 0.9)

  # Cheeks.
  for side in (-1, 1):
    paint(canvas.ellipse(side * 25, 8, 9, 6), (232, 104, 118), has["Rosy_Cheeks"], 0.5)

  # Mouth: a smile bends the lips up at the corners; open shows the inside (and teeth).
  smiling = has["Smiling"]
  mouth_v = np.where(smiling, 30.0, 28.0).astype(np.float32)[:, None, None]
  bend = np.where(smiling, -6.5, rng.uniform(-1.0, 1.0, size)).astype(np.float32)[:, None, None]
  half_width = np.where(smiling, 16.0, 13.0).astype(np.float32)[:, None, None]
  opening = np.where(has["Mouth_Slightly_Open"], 2.8, 0.0).astype(np.float32)[:, None, None]

  def mouth_curve(u):
    return mouth_v + bend * (u / half_width) ** 2

  win = canvas.window(-20, 20, 14, 44)
  u, v, edge = canvas.local(win)
  lips = np.where(
    has["Wearing_Lipstick"][:, None],
    jitter((196, 24, 52), 12),
    skin * np.float32([0.82, 0.56, 0.56]),
  )
  along = np.clip((half_width - np.abs(u)) / edge + 0.5, 0, 1)
  offset = np.abs(v - mouth_curve(u))
  paint((win, along * np.clip((opening + 2.4 - offset) / edge + 0.5, 0, 1)), lips)
  paint(
    (win, along * np.clip((np.maximum(opening, 0.5) - offset) / edge + 0.5, 0, 1)), (55, 18, 24)
  )
  teeth = np.abs(v - (mouth_curve(u) - opening * 0.5)) < opening * 0.45
  paint(
    (win, along * teeth * (np.abs(u) < half_width * 0.7)),
    (238, 236, 226),
    smiling & has["Mouth_Slightly_Open"],
  )

  # Mustache and goatee.
  paint(
    canvas.band(lambda u: mouth_curve(u) - opening - 5.5, 2.4, 15, (10, 30)),
    hair * 0.6,
    has["Mustache"],
  )
  paint(canvas.ellipse(0, 47, 10, 8.5), hair * 0.6, has["Goatee"])

  # Eyeglasses: two rims, a bridge, temples, a faint tint.
  glasses = has["Eyeglasses"]
  frame = jitter((25, 25, 30), 15)
  for side in (-1, 1):
    eye_u = side * _EYE_U
    win, outer = canvas.ellipse(eye_u, _EYE_V, 13.5, 10.5)
    _, inner = canvas.ellipse(eye_u, _EYE_V, 11.8, 8.8, win)
    paint((win, inner), (200, 210, 220), glasses, 0.15)
    paint((win, np.clip(outer - inner, 0, 1)), frame, glasses)
    temple_u = (33.0, 46.0) if side > 0 else (-46.0, -33.0)
    paint(canvas.box(*temple_u, _EYE_V - 2.6, _EYE_V - 0.8), frame, glasses)
  paint(canvas.band(lambda u: _EYE_V - 1.5 + 0.02 * u**2, 1.0, 6.5, (-22, -12)), frame, glasses)

  # Earrings.
  for side in (-1, 1):
    win = canvas.window(-56, 56, 4, 20)
    u, v, edge = canvas.local(win)
    ring = np.sqrt((u - side * (face_width + 0.5)) ** 2 + (v - 12) ** 2)
    paint((win, np.clip((2.9 - ring) / edge + 0.5, 0, 1)), (232, 192, 64), has["Wearing_Earrings"])

  # Hat: a crown over the hair and a brim.
  hat = jitter(rng.uniform(20, 235, (size, 3)), 0)
  win = canvas.window(-70, 70, -84, -26)
  u, v, edge = canvas.local(win)
  crown = np.sqrt((u / 52) ** 2 + ((v + 46) / 36) ** 2)
  crown_mask = np.clip((1 - crown) * 36 / edge + 0.5, 0, 1) * np.clip((-30 - v) / edge + 0.5, 0, 1)
  paint((win, crown_mask), hat, has["Wearing_Hat"])
  paint(canvas.box(-64, 64, -38, -29, win), hat * 0.8, has["Wearing_Hat"])

  # Necktie under the chin, with a knot.
  tie = rng.uniform(20, 200, (size, 3)).astype(np.float32)
  win = canvas.window(-14, 14, 70, 120)
  u, v, edge = canvas.local(win)
  tie_mask = np.clip((3.2 + (v - 77) * 0.25 - np.abs(u)) / edge + 0.5, 0, 1)
  tie_mask *= np.clip((v - 77) / edge + 0.5, 0, 1) * np.clip((130 - v) / edge, 0, 1)
  paint((win, tie_mask), tie, has["Wearing_Necktie"])
  paint(canvas.ellipse(0, 75.5, 5.5, 4.5), tie * 0.85, has["Wearing_Necktie"])

  # Lighting gradient, sensor noise, blur.
  light = rng.uniform(-0.28, 0.28, size).astype(np.float32)[:, None, None, None]
  lit = canvas.image * (1.0 + light * canvas.u[..., None] / 90.0)
  lit += (
    rng.standard_normal(lit.shape, np.float32)
    * rng.uniform(2, 7, size).astype(np.float32)[:, None, None, None]
  )
  blurry = has["Blurry"]
  if blurry.any():
    lit[blurry] = _blur(lit[blurry])
  return np.clip(np.round(lit), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------
# Files in CelebA's layout.


def image_name(index: int) -> str:
  """CelebA's name of the image in 0-based file position `index`: 000001.jpg, ..."""
  return f"{index + 1:06d}.jpg"


def partition(num_images: int) -> np.ndarray:
  """Contiguous train / validation / test blocks, 80/10/10 like CelebA's 0/1/2 partition."""
  num_train = int(round(0.8 * num_images))
  num_validation = int(round(0.1 * num_images))
  labels = np.full(num_images, 2, np.int8)
  labels[:num_train] = 0
  labels[num_train : num_train + num_validation] = 1
  return labels


def write_attribute_file(path: PathLike, attributes: np.ndarray) -> None:
  """list_attr_celeba.txt as CelebA writes it: `-1` and ` 1` in two-character columns."""
  lines = [str(len(attributes)), " ".join(ATTRIBUTE_NAMES) + " "]
  for index, row in enumerate(np.asarray(attributes)):
    lines.append(image_name(index) + " " + " ".join(f"{int(value):2d}" for value in row))
  Path(path).write_text("\n".join(lines) + "\n")


def write_partition_file(path: PathLike, labels: np.ndarray) -> None:
  Path(path).write_text(
    "".join(f"{image_name(index)} {int(label)}\n" for index, label in enumerate(labels))
  )


def write_kaggle_files(output_dir: Path, attributes: np.ndarray, labels: np.ndarray) -> None:
  """list_attr_celeba.csv and list_eval_partition.csv as Kaggle's copy of CelebA has them."""
  rows = [",".join(("image_id",) + ATTRIBUTE_NAMES)]
  for index, row in enumerate(np.asarray(attributes)):
    rows.append(",".join([image_name(index)] + [str(int(value)) for value in row]))
  Path(output_dir, KAGGLE_ATTRIBUTE_FILE).write_text("\n".join(rows) + "\n")
  Path(output_dir, KAGGLE_PARTITION_FILE).write_text(
    "image_id,partition\n"
    + "".join(f"{image_name(index)},{int(label)}\n" for index, label in enumerate(labels))
  )


def write_marker(output_dir: PathLike, num_images: int, seed: int) -> None:
  """MARKER_FILE: plain text saying what the folder is (only its presence is read)."""
  Path(output_dir, MARKER_FILE).write_text(
    f"SYNTHETIC faces drawn by pipelines.synthetic_faces (num_images={num_images}, "
    f"seed={seed}) in CelebA's layout. This is NOT CelebA: numbers measured on it are not "
    f"CelebA's.\n"
  )


def write_images(
  image_dir: PathLike, attributes: np.ndarray, seed: int, start: int = 0, quality: int = 90
) -> None:
  """Draws the faces of `attributes` [N, 40] and writes them as image_name(start + i),
  BATCH_SIZE at a time (memory stays at one batch for any N). The pictures of a batch are
  a pure function of (seed, the batch's first index), so any `start` aligned to
  BATCH_SIZE reproduces the same files."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  image_dir = Path(image_dir)
  image_dir.mkdir(parents=True, exist_ok=True)
  for first in range(0, len(attributes), BATCH_SIZE):
    rng = np.random.default_rng([int(seed), 1, start + first])
    faces = render_faces(attributes[first : first + BATCH_SIZE], rng)
    for offset, face in enumerate(faces):
      Image.fromarray(face).save(
        image_dir / image_name(start + first + offset), format="JPEG", quality=quality
      )


def generate(
  output_dir: PathLike, num_images: int, seed: int = 0, layout: str = "release"
) -> np.ndarray:
  """Writes a synthetic CelebA folder of `num_images` faces in the `layout` of CelebA's
  release (text files, img_align_celeba/) or of Kaggle's copy ("kaggle": CSV files,
  img_align_celeba/img_align_celeba/); returns the int8 attributes [N, 40] it wrote. A pure
  function of (num_images, seed): both layouts hold the same faces."""
  if num_images < 1:
    raise ValueError(f"num_images must be positive, got {num_images}")
  if layout not in LAYOUTS:
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
  output_dir = Path(output_dir)
  output_dir.mkdir(parents=True, exist_ok=True)
  attributes = sample_attributes(num_images, np.random.default_rng([int(seed), 0]))
  if layout == "kaggle":
    write_images(output_dir / IMAGE_DIR / IMAGE_DIR, attributes, seed)
    write_kaggle_files(output_dir, attributes, partition(num_images))
  else:
    write_images(output_dir / IMAGE_DIR, attributes, seed)
    write_attribute_file(output_dir / ATTRIBUTE_FILE, attributes)
    write_partition_file(output_dir / PARTITION_FILE, partition(num_images))
  write_marker(output_dir, num_images, seed)
  return attributes


if __name__ == "__main__":
  # The command lives with the other runners (pipelines read no flags); this name still runs it.
  from runners import flagutil, synthetic_faces  # pylint: disable=g-import-not-at-top

  flagutil.run(synthetic_faces.define_flags, synthetic_faces.main, tensorflow=False)
