"""Editing faces by attributes (jmvae_tf/inspection/editing.py) on a tiny untrained JMVAE-kl with 16x16
faces: the edit's values against an independent computation, and every refusal."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from jmvae_tf.core.likelihoods import GAUSSIAN_FIXED
from jmvae_tf.core.modalities import Modality
from jmvae_tf.inspection import editing
from jmvae_tf.models import config
from pipelines.celeba_attributes import ATTRIBUTE_NAMES

FACES = (
  Modality("image", GAUSSIAN_FIXED, (16, 16, 3), "image"),
  Modality("attributes", GAUSSIAN_FIXED, (40,), "vector"),
)


def build(model="jmvae_kl", modalities=FACES, architecture="celeba_conv", **options):
  keras.utils.set_random_seed(0)
  return config.build_model(
    config.ModelConfig.make(model, modalities, architecture, "celeb_a", latent_dim=4, **options)
  )


@pytest.fixture(scope="module")
def model():
  return build()


def faces(n=3, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 3)).astype(np.float32)


# --- parsing ---------------------------------------------------------------------------------


def test_parse_edits_signs_columns_and_strength():
  edits = editing.parse_edits("+Smiling, -Eyeglasses,Male", ATTRIBUTE_NAMES, strength=2.0)
  assert [(e.name, e.index, e.value) for e in edits] == [
    ("Smiling", ATTRIBUTE_NAMES.index("Smiling"), 2.0),
    ("Eyeglasses", ATTRIBUTE_NAMES.index("Eyeglasses"), -2.0),
    ("Male", ATTRIBUTE_NAMES.index("Male"), 2.0),
  ]
  assert [e.label for e in edits] == ["+Smiling", "-Eyeglasses", "+Male"]


@pytest.mark.parametrize(
  "spec, message",
  [
    ("+Smilling", "unknown attribute 'Smilling'.*valid: 5_o_Clock_Shadow, .*Young"),
    ("", "no attribute to edit"),
    ("+Smiling,-Smiling", "edited twice"),
  ],
)
def test_parse_edits_refuses_bad_specs(spec, message):
  with pytest.raises(editing.EditError, match=message):
    editing.parse_edits(spec, ATTRIBUTE_NAMES)


def test_parse_edits_refuses_a_non_positive_strength():
  with pytest.raises(editing.EditError, match="strength"):
    editing.parse_edits("+Smiling", ATTRIBUTE_NAMES, strength=0)


# --- values ----------------------------------------------------------------------------------


def independent_image_mean(model, w):
  mean, _ = model.subset_encoders["attributes"]({"attributes": w}, training=False)
  return model.decoders["image"](mean, training=False).mean().numpy()


def test_attributes_from_image_is_p_w_given_the_mean_of_q_z_given_x(model):
  x = faces()
  mean, _ = model.subset_encoders["image"]({"image": x}, training=False)
  expected = model.decoders["attributes"](mean, training=False).mean()
  np.testing.assert_allclose(editing.attributes_from_image(model, x), expected, atol=1e-6)


def test_bidirectional_edit_is_x_plus_edited_minus_original_mean(model):
  x = faces()
  edits = editing.parse_edits("+Smiling,-Eyeglasses", ATTRIBUTE_NAMES)
  result = editing.bidirectional_edit(model, x, edits)
  w = editing.attributes_from_image(model, x).numpy()
  w_edited = w.copy()
  w_edited[:, ATTRIBUTE_NAMES.index("Smiling")] = 1.0
  w_edited[:, ATTRIBUTE_NAMES.index("Eyeglasses")] = -1.0
  np.testing.assert_allclose(result["w"], w, atol=1e-6)
  np.testing.assert_array_equal(result["w_edited"], w_edited)
  x_mean = independent_image_mean(model, w)
  x_edited = independent_image_mean(model, w_edited)
  np.testing.assert_allclose(result["x_mean"], x_mean, atol=1e-5)
  np.testing.assert_allclose(result["edited_mean"], x_edited, atol=1e-5)
  np.testing.assert_allclose(result["edited"], np.clip(x + x_edited - x_mean, -1, 1), atol=1e-5)
  assert not np.allclose(result["edited"], x)  # the edit changed the faces
  # Untouched attributes keep the values read off the picture.
  others = [i for i in range(40) if ATTRIBUTE_NAMES[i] not in ("Smiling", "Eyeglasses")]
  np.testing.assert_array_equal(result["w_edited"][:, others], w[:, others])


def test_an_edit_that_changes_nothing_returns_the_picture(model):
  x = faces()
  w = editing.attributes_from_image(model, x).numpy()
  column = ATTRIBUTE_NAMES.index("Smiling")
  # Setting each face's attribute to the value read off it leaves w, so x'_mean = x_mean.
  same = [editing.Edit("Smiling", column, float(w[0, column]))]
  result = editing.bidirectional_edit(model, x[:1], same)
  np.testing.assert_allclose(result["edited"], np.clip(x[:1], -1, 1), atol=1e-5)


def test_edit_success_counts_signs_of_the_attribute_read_off_the_pictures(model):
  x = faces(5)
  edit = editing.parse_edits("+Smiling", ATTRIBUTE_NAMES)[0]
  rates = editing.edit_success(model, x, edit)
  column = edit.index
  before = editing.attributes_from_image(model, x).numpy()[:, column] > 0
  edited = editing.bidirectional_edit(model, x, [edit])["edited"]
  after = editing.attributes_from_image(model, edited).numpy()[:, column] > 0
  assert rates["num_faces"] == 5 and rates["num_to_flip"] == int((~before).sum())
  assert rates["before"] == pytest.approx(before.mean())
  assert rates["after"] == pytest.approx(after.mean())
  if (~before).any():
    assert rates["flipped"] == pytest.approx(after[~before].mean())


def test_jmvae_edits_through_iterative_sampling():
  model = build("jmvae")
  x = faces(2)
  edits = editing.parse_edits("+Smiling", ATTRIBUTE_NAMES)
  one = editing.bidirectional_edit(model, x, edits, num_steps=2)
  again = editing.bidirectional_edit(model, x, edits, num_steps=2)
  np.testing.assert_array_equal(one["edited"], again["edited"])  # seeded: deterministic
  assert one["edited"].shape == x.shape and np.all(np.abs(one["edited"]) <= 1)


# --- refusals ------------------------------------------------------------------------------


def test_a_model_without_an_image_is_refused():
  vectors = (
    Modality("a", GAUSSIAN_FIXED, (5,), "vector"),
    Modality("attributes", GAUSSIAN_FIXED, (40,), "vector"),
  )
  model = build(modalities=vectors, architecture="mnist_mlp")
  with pytest.raises(editing.EditError, match="no image modality"):
    editing.face_modalities(model)


def test_a_model_with_other_attributes_is_refused(model):
  with pytest.raises(editing.EditError, match="size 10"):
    editing.face_modalities(model, num_attributes=10)


def test_a_one_way_model_is_refused():
  cvae = build("cvae", target="image", condition="attributes")
  with pytest.raises(editing.EditError):
    editing.face_modalities(cvae)


def test_side_by_side_places_the_pictures_left_to_right():
  a, b = -np.ones((4, 3, 3), np.float32), np.ones((4, 3, 3), np.float32)
  picture = editing.side_by_side(a, b, gap=2)
  assert picture.shape == (4, 8, 3) and picture.dtype == np.uint8
  assert np.all(picture[:, :3] == 0) and np.all(picture[:, 5:] == 255)
  assert tf.io.decode_png(tf.io.encode_png(picture)).shape == (4, 8, 3)
