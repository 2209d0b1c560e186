"""Editing a face by its attributes through a trained model (the paper's Figure 9).

Bi-directional editing of an unlabelled face x (section 4.6.3):
  w        = the mean of p(w|z), z the mean of q(z|x)        (attributes read off x)
  x_mean   = the mean of p(x|z), z the mean of q(z|w)        (the face w describes)
  x'_mean  = the same from the edited w'                      (the edited description)
  output   = x + x'_mean - x_mean                             (x keeps what w does not say)
All through the models' inference API (posterior, decode), with posterior means rather
than draws, so an edit is a deterministic function of the picture. The image modality is
the model's one of the image family, the attribute modality its one of the vector family; the
attribute names are the caller's (e.g. CelebA's 40, `pipelines.celeba_attributes`).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from jmvae_tf.core.modalities import IMAGE, VECTOR

# The value an edit gives an attribute: the data's own {-1, 1}.
EDIT_VALUE = 1.0


class EditError(ValueError):
  """An edit that cannot be made: an unknown attribute, a model without the modalities."""


@dataclasses.dataclass(frozen=True)
class Edit:
  """Attribute `name` (column `index`) set to `value` (+strength, or -strength for "not")."""

  name: str
  index: int
  value: float

  @property
  def label(self) -> str:
    return f"{'+' if self.value > 0 else '-'}{self.name}"


def parse_edits(spec: str, attribute_names: Sequence[str], strength: float = EDIT_VALUE):
  """ "+Smiling,-Eyeglasses" -> [Edit("Smiling", 31, +s), Edit("Eyeglasses", 15, -s)].

  A name without a sign means "+". An unknown name is an EditError listing the valid ones.
  """
  if not strength > 0:
    raise EditError(f"the edit strength must be positive, got {strength}")
  edits: List[Edit] = []
  items = [item.strip() for item in str(spec).split(",") if item.strip()]
  if not items:
    raise EditError(f"no attribute to edit in {spec!r}; write e.g. '+Smiling,-Eyeglasses'")
  for item in items:
    sign, name = (-1.0, item[1:]) if item[0] == "-" else (1.0, item.lstrip("+"))
    name = name.strip()
    if name not in attribute_names:
      raise EditError(
        f"unknown attribute {name!r} in {spec!r}; valid: {', '.join(attribute_names)}"
      )
    if any(e.name == name for e in edits):
      raise EditError(f"attribute {name!r} is edited twice in {spec!r}")
    edits.append(Edit(name, list(attribute_names).index(name), sign * strength))
  return edits


def face_modalities(model, num_attributes: Optional[int] = None) -> Tuple[str, str]:
  """(image modality, attribute modality) of `model`, or an EditError saying what it lacks."""
  images = [m for m in model.modality_specs if m.family == IMAGE]
  vectors = [m for m in model.modality_specs if m.family == VECTOR]
  if len(images) != 1:
    raise EditError(
      f"the model has no image modality to edit (its modalities: "
      f"{[(m.name, m.shape) for m in model.modality_specs]})"
    )
  if len(vectors) != 1 or (num_attributes is not None and vectors[0].shape[0] != num_attributes):
    raise EditError(
      f"the model needs one attribute modality of size {num_attributes}; its modalities: "
      f"{[(m.name, m.shape) for m in model.modality_specs]}"
    )
  for given in ((images[0].name,), (vectors[0].name,)):
    if not model.can_infer(given):
      problem = model.inference_problem(given)
      raise EditError(f"the model cannot infer z from {given[0]} alone: {problem}")
  missing = {images[0].name, vectors[0].name} - set(model.generated_modalities)
  if missing:
    raise EditError(f"the model does not generate {sorted(missing)}; editing needs both")
  return images[0].name, vectors[0].name


def _mean_decoded(model, z, name) -> tf.Tensor:
  return model.decode(z, {}, names=[name])[name].mean()


def attributes_from_image(model, images, num_steps: int = 0) -> tf.Tensor:
  """w = the mean of p(w|z), z the mean of q(z|x) (JMVAE: x with w imputed by num_steps)."""
  image, attributes = face_modalities(model)
  batch = {image: tf.convert_to_tensor(images, tf.float32)}
  mean, _ = model.posterior(batch, [image], num_steps=num_steps)
  return _mean_decoded(model, mean, attributes)


def image_from_attributes(model, attributes, num_steps: int = 0) -> tf.Tensor:
  """x_mean = the mean of p(x|z), z the mean of q(z|w)."""
  image, attribute_name = face_modalities(model)
  batch = {attribute_name: tf.convert_to_tensor(attributes, tf.float32)}
  mean, _ = model.posterior(batch, [attribute_name], num_steps=num_steps)
  return _mean_decoded(model, mean, image)


def reconstruct(model, images, num_steps: int = 0) -> tf.Tensor:
  """The mean of p(x|z), z the mean of q(z|x): what the model makes of the picture."""
  image, _ = face_modalities(model)
  batch = {image: tf.convert_to_tensor(images, tf.float32)}
  mean, _ = model.posterior(batch, [image], num_steps=num_steps)
  return _mean_decoded(model, mean, image)


def apply_edits(attributes, edits: Sequence[Edit]) -> tf.Tensor:
  """w with each edited column set to its edit's value."""
  w = np.array(attributes, np.float32, copy=True)
  for edit in edits:
    w[:, edit.index] = edit.value
  return tf.constant(w)


def bidirectional_edit(model, images, edits: Sequence[Edit], num_steps: int = 0) -> Dict:
  """The paper's Figure 9 for a batch of faces x in [-1, 1]: returns arrays
  {w, w_edited: w', reconstruction, x_mean, edited_mean,
  edited: clip(x + x'_mean - x_mean, -1, 1)} (see the module docstring)."""
  images = tf.convert_to_tensor(images, tf.float32)
  w = attributes_from_image(model, images, num_steps)
  w_edited = apply_edits(w.numpy(), edits)
  x_mean = image_from_attributes(model, w, num_steps)
  x_edited_mean = image_from_attributes(model, w_edited, num_steps)
  edited = tf.clip_by_value(images + x_edited_mean - x_mean, -1.0, 1.0)
  return {
    "w": w.numpy(),
    "w_edited": w_edited.numpy(),
    "reconstruction": reconstruct(model, images, num_steps).numpy(),
    "x_mean": x_mean.numpy(),
    "edited_mean": x_edited_mean.numpy(),
    "edited": edited.numpy(),
  }


def edit_success(model, images, edit: Edit, num_steps: int = 0) -> Dict[str, float]:
  """How often an edit does what it says, judged by the model itself: the attribute read
  off the picture (the sign of the mean of p(w|z), z the mean of q(z|x)) points the edit's
  way. Returns {before: rate on the inputs, after: rate on the edited faces, flipped: rate
  among the faces that did not point that way before, num_faces, num_to_flip}."""
  images = tf.convert_to_tensor(images, tf.float32)
  sign = np.sign(edit.value)
  before = np.sign(attributes_from_image(model, images, num_steps).numpy()[:, edit.index]) == sign
  edited = bidirectional_edit(model, images, [edit], num_steps)["edited"]
  after = np.sign(attributes_from_image(model, edited, num_steps).numpy()[:, edit.index]) == sign
  to_flip = ~before
  return {
    "before": float(before.mean()),
    "after": float(after.mean()),
    "flipped": float(after[to_flip].mean()) if to_flip.any() else float("nan"),
    "num_faces": int(len(before)),
    "num_to_flip": int(to_flip.sum()),
  }


def side_by_side(*images: np.ndarray, gap: int = 2) -> np.ndarray:
  """uint8 [H, k*W + gaps, 3] of k images in [-1, 1] (each [H, W, 3]), left to right."""
  pictures = [
    np.clip(np.round((np.asarray(x) + 1) * 127.5), 0, 255).astype(np.uint8) for x in images
  ]
  height = pictures[0].shape[0]
  spacer = np.full((height, gap, 3), 255, np.uint8)
  parts = []
  for i, picture in enumerate(pictures):
    parts += ([spacer] if i else []) + [picture]
  return np.concatenate(parts, axis=1)
