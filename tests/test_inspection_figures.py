"""jmvae_tf.inspection.figures: the values behind Figures 3, 4 and 5 (recomputed independently through
the models' inference API with the seeds the module documents) and their drawings (PNG files
and TensorBoard images that read back)."""

import os

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from model_configs import mnist_config

from jmvae_tf import evaluation, models
from jmvae_tf.core import files
from jmvae_tf.inspection import figures
from jmvae_tf.models import config  # noqa: E402

NAMES = ("image", "label")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def random_batch(n=6, seed=0):
  rng = np.random.default_rng(seed)
  return {
    "image": tf.constant((rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32)),
    "label": tf.one_hot(rng.integers(0, 10, n), 10),
  }


def build(name, latent_dim=4, **kw):
  keras.utils.set_random_seed(0)
  return config.build_model(mnist_config(name, latent_dim=latent_dim, **kw))


@pytest.fixture(scope="module")
def jmvae():
  return build("jmvae")


@pytest.fixture(scope="module")
def jmvae_kl():
  return build("jmvae_kl")


@pytest.fixture(scope="module")
def latent2():
  return {"JMVAE": build("jmvae", latent_dim=2), "JMVAE-kl": build("jmvae_kl", latent_dim=2)}


def split(seed, n):
  """n stateless seeds from one, written out without the library's split_seed."""
  return tf.unstack(tf.random.experimental.stateless_split(tf.constant(seed, tf.int64), n))


def draw(mean, variance, seed):
  """z = mean + sqrt(variance) * eps, eps ~ N(0, I) from a stateless seed."""
  return mean + tf.sqrt(variance) * tf.random.stateless_normal(tf.shape(mean), seed=seed)


def image_mean(model, z, batch):
  return model.decode(z, batch, names=["image"])["image"].mean().numpy()


def labels_only(n=5, seed=0):
  return {"label": random_batch(n, seed)["label"]}


# --- figure 3 ------------------------------------------------------------------------------


def expected_chain_rows(model, given, steps, seed):
  """Row i: the mean of p(x|z), z ~ q(z|x_k, w) with x_k the state after k = steps[i]
  rounds of iterative sampling from the chain seed, z drawn with fold_in(chain seed, i)."""
  chain_seed, _ = split([seed, 3], 2)
  rows = []
  for i, k in enumerate(steps):
    state = models.iterative_impute(model, given, "image", k, chain_seed)
    z = draw(
      *model.posterior(state, NAMES), tf.random.experimental.stateless_fold_in(chain_seed, i)
    )
    rows.append(image_mean(model, z, state))
  return rows


def test_figure3_jmvae_rows_are_the_decoded_states_of_one_chain(jmvae):
  """JMVAE (no q(z|w)) gets one row per step count, each the decoder mean for a z drawn from
  q(z|x_k, w) with the documented seeds; 0 steps is q(z|x=0, w)."""
  given = labels_only(5)
  steps = [0, 1, 3]
  names, rows = figures.figure3_rows(jmvae, given, "image", steps, seed=4)
  assert names == ["0 steps", "1 step", "3 steps"]
  assert len(rows) == 3 and all(r.shape == (5, 28, 28, 1) for r in rows)
  for got, want in zip(rows, expected_chain_rows(jmvae, given, steps, seed=4)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # the 0-step row starts from x = 0 (no library imputation involved in this check)
  zero = {"image": tf.zeros([5, 28, 28, 1]), "label": given["label"]}
  chain_seed, _ = split([4, 3], 2)
  z = draw(
    *jmvae.joint_posterior_layers(zero, training=False)[0],
    tf.random.experimental.stateless_fold_in(chain_seed, 0),
  )
  np.testing.assert_allclose(rows[0], image_mean(jmvae, z, zero), rtol=1e-5, atol=1e-6)
  assert all(0.0 <= r.min() and r.max() <= 1.0 for r in rows)  # Bernoulli means
  assert not np.allclose(rows[0], rows[2])  # the chain moved


def test_figure3_jmvae_kl_gets_a_first_row_from_its_label_encoder(jmvae_kl):
  """JMVAE-kl infers z from w directly: a first row "q(z|label)" decodes a draw from its
  q(z|w) with the second of split((seed, 3)), then the chain rows as for JMVAE."""
  given = labels_only(4, seed=1)
  steps = [0, 2]
  names, rows = figures.figure3_rows(jmvae_kl, given, "image", steps, seed=9)
  assert names == ["q(z|label)", "0 steps", "2 steps"]
  _, direct_seed = split([9, 3], 2)
  mean, variance = jmvae_kl.subset_encoders["label"](given, training=False)
  np.testing.assert_allclose(
    rows[0], image_mean(jmvae_kl, draw(mean, variance, direct_seed), given), rtol=1e-5, atol=1e-6
  )
  for got, want in zip(rows[1:], expected_chain_rows(jmvae_kl, given, steps, seed=9)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps", [[2, 1], [0, 5, 3], [-1, 0]])
def test_figure3_steps_must_be_non_negative_and_increasing(jmvae, steps):
  """Decreasing or negative step counts are a ValueError naming them."""
  with pytest.raises(ValueError, match="increasing"):
    figures.figure3_rows(jmvae, labels_only(2), "image", steps, seed=0)


def test_figure3_is_deterministic_for_a_seed(jmvae):
  """The same seed gives the same rows; another seed other rows."""
  given = labels_only(3)
  _, a = figures.figure3_rows(jmvae, given, "image", [0, 2], seed=1)
  _, b = figures.figure3_rows(jmvae, given, "image", [0, 2], seed=1)
  _, c = figures.figure3_rows(jmvae, given, "image", [0, 2], seed=2)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  for x, y in zip(a, c):
    assert not np.allclose(x, y)


# --- figure 4 ------------------------------------------------------------------------------


def expected_curve(model, dataset, target, given, steps, num_samples, seed):
  """The mean over every example of eq 11 at each step count, batch i with seed (seed, i)."""
  values = []
  for k in steps:
    per_example = [
      evaluation.conditional_log_likelihood(
        model, batch, target, given, num_samples, k, seed=(seed, i)
      ).numpy()
      for i, batch in enumerate(dataset)
    ]
    values.append(float(np.concatenate(per_example).mean()))
  return values


def test_figure4_curves_are_the_conditional_log_likelihood_means(jmvae, jmvae_kl):
  """Each point is the example-weighted mean of conditional_log_likelihood over the data set
  (batches of unequal size), batch i seeded (seed, i); JMVAE-kl, which needs no iterative
  sampling, is the same value at every step count."""
  dataset = [random_batch(6, 0), random_batch(3, 1)]
  steps = [0, 2]
  curves = figures.figure4_curves(
    {"JMVAE": jmvae, "JMVAE-kl": jmvae_kl}, dataset, steps, num_samples=3, seed=5
  )
  assert list(curves) == ["log p(x~|w)", "log p(w~|x)"]
  for direction in curves.values():
    assert list(direction) == ["JMVAE", "JMVAE-kl"]
    assert all(len(v) == len(steps) and all(np.isfinite(v)) for v in direction.values())
  for target, given, name in (
    ("image", ("label",), "log p(x~|w)"),
    ("label", ("image",), "log p(w~|x)"),
  ):
    want = expected_curve(jmvae, dataset, target, given, steps, 3, seed=5)
    np.testing.assert_allclose(curves[name]["JMVAE"], want, rtol=1e-5)
    assert curves[name]["JMVAE"][0] != curves[name]["JMVAE"][1]  # imputation changes it
    flat = curves[name]["JMVAE-kl"]
    assert flat == [flat[0]] * len(steps)
    want = expected_curve(jmvae_kl, dataset, target, given, steps[:1], 3, seed=5)[0]
    np.testing.assert_allclose(flat[0], want, rtol=1e-5)


# --- figure 5 ------------------------------------------------------------------------------


def test_figure5_latents_jmvae_from_zero_filled_image(latent2):
  """JMVAE: joint z ~ q(z|x,w) with split((seed, i))[0]; z from w alone is q(z|x=0,w) (the
  start of iterative sampling) with split((seed, i))[1], so it ignores the image."""
  model = latent2["JMVAE"]
  dataset = [random_batch(6, 0), random_batch(4, 1)]
  joint, alone, how = figures.figure5_latents(model, dataset, seed=7, given=("label",))
  assert joint.shape == (10, 2) and alone.shape == (10, 2)
  assert how == "image from 0 by iterative sampling, K=0, then z ~ q(z|image,label)"
  want_joint, want_alone = [], []
  for i, batch in enumerate(dataset):
    s = split([7, i], 2)
    want_joint.append(draw(*model.joint_posterior_layers(batch, training=False)[0], s[0]).numpy())
    zero = {"image": tf.zeros_like(batch["image"]), "label": batch["label"]}
    want_alone.append(draw(*model.joint_posterior_layers(zero, training=False)[0], s[1]).numpy())
  np.testing.assert_allclose(joint, np.concatenate(want_joint), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(alone, np.concatenate(want_alone), rtol=1e-5, atol=1e-6)
  other_images = [dict(b, image=1.0 - b["image"]) for b in dataset]
  joint2, alone2, _ = figures.figure5_latents(model, other_images, seed=7, given=("label",))
  np.testing.assert_allclose(alone2, alone, rtol=1e-5, atol=1e-6)
  assert not np.allclose(joint2, joint)


def test_figure5_latents_jmvae_kl_from_its_label_encoder(latent2):
  """JMVAE-kl: z from w alone is drawn from its own q(z|w)."""
  model = latent2["JMVAE-kl"]
  dataset = [random_batch(5, 2)]
  joint, alone, how = figures.figure5_latents(model, dataset, seed=3, given=("label",))
  assert how == "z ~ q(z|label)"
  s = split([3, 0], 2)
  np.testing.assert_allclose(
    joint,
    draw(*model.joint_posterior_layers(dataset[0], training=False)[0], s[0]),
    rtol=1e-5,
    atol=1e-6,
  )
  mean, variance = model.subset_encoders["label"](dataset[0], training=False)
  np.testing.assert_allclose(alone, draw(mean, variance, s[1]), rtol=1e-5, atol=1e-6)


# --- drawings ------------------------------------------------------------------------------


def read_images(log_dir):
  """{tag: [decoded image]} of the image summaries under log_dir's event files."""
  found = {}
  for path in tf.io.gfile.glob(f"{log_dir}/events.*"):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        # TF2 image summaries: a string tensor [width, height, png, ...]
        strings = value.tensor.string_val
        assert value.metadata.plugin_data.plugin_name == "images"
        width, height = int(strings[0]), int(strings[1])
        picture = tf.image.decode_png(strings[2], channels=4).numpy()
        assert picture.shape[:2] == (height, width)
        found.setdefault(value.tag, []).append((event.step, picture))
  return found


@pytest.fixture(scope="module")
def drawn(jmvae, jmvae_kl, latent2):
  """One figure of each kind from small values."""
  given = labels_only(4)
  names, rows = figures.figure3_rows(jmvae_kl, given, "image", [0, 1], seed=0)
  steps = [0, 1]
  curves = figures.figure4_curves(
    {"JMVAE": jmvae, "JMVAE-kl": jmvae_kl}, [random_batch(4)], steps, num_samples=2, seed=0
  )
  batch = random_batch(8)
  panels = {
    title: figures.figure5_latents(m, [batch], seed=0, given=("label",))
    for title, m in latent2.items()
  }
  labels = np.argmax(batch["label"].numpy(), -1)
  return {
    "figure3": lambda: figures.draw_figure3(rows, names, list(range(4)), "Figure 3", (0.0, 1.0)),
    "figure4": lambda: figures.draw_figure4(curves, steps),
    "figure5": lambda: figures.draw_figure5(panels, labels),
  }


@pytest.mark.parametrize("tag", ["figure3", "figure4", "figure5"])
def test_save_figure_writes_a_png_and_a_tensorboard_image(tmp_path, drawn, tag):
  """save_figure returns the PNG it writes, and the writer gets the same picture as an image
  summary (step 0, the given tag) that reads back from the event file."""
  fig = drawn[tag]()
  try:
    writer = tf.summary.create_file_writer(str(tmp_path / "logs"))
    png = figures.save_figure(fig, str(tmp_path / f"{tag}.png"), writer, tag=tag)
    writer.flush()
    writer.close()
  finally:
    plt.close(fig)
  assert png.startswith(PNG_MAGIC)
  assert (tmp_path / f"{tag}.png").read_bytes() == png
  picture = tf.image.decode_png(png, channels=4).numpy()
  assert picture.shape[0] > 50 and picture.shape[1] > 50
  assert picture[..., :3].std() > 0  # something is drawn
  images = read_images(str(tmp_path / "logs"))
  assert list(images) == [tag]
  [(step, logged)] = images[tag]
  assert step == 0
  np.testing.assert_array_equal(logged, picture)


def test_save_figure_without_writer_only_writes_the_png(tmp_path, drawn):
  """No writer: the PNG file only."""
  fig = drawn["figure4"]()
  try:
    png = figures.save_figure(fig, str(tmp_path / "f.png"))
  finally:
    plt.close(fig)
  assert png.startswith(PNG_MAGIC)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


@pytest.mark.skipif(not os.access("/dev/full", os.W_OK), reason="needs /dev/full (Linux)")
def test_save_figure_that_cannot_be_written_leaves_the_earlier_png(tmp_path, drawn):
  """The PNG is written aside and renamed (files.write_whole): with the aside file a link
  to /dev/full (every write fails as on a full disk) the error names the file and the
  earlier figure stays whole."""
  (tmp_path / "f.png").write_bytes(PNG_MAGIC + b"earlier")
  os.symlink("/dev/full", tmp_path / "f.png.tmp")
  fig = drawn["figure4"]()
  try:
    with pytest.raises(files.WriteError, match=r"could not write .*f\.png .*disk is full"):
      figures.save_figure(fig, str(tmp_path / "f.png"))
  finally:
    plt.close(fig)
  assert (tmp_path / "f.png").read_bytes() == PNG_MAGIC + b"earlier"
  assert not os.path.lexists(tmp_path / "f.png.tmp")  # the aside file goes


# --- figures 6-9: faces and attributes (16x16 faces, the CelebA networks) ------------------


def face_model(name, **kw):
  from jmvae_tf.core.likelihoods import GAUSSIAN_FIXED
  from jmvae_tf.core.modalities import Modality

  modalities = (
    Modality("image", GAUSSIAN_FIXED, (16, 16, 3), "image"),
    Modality("attributes", GAUSSIAN_FIXED, (40,), "vector"),
  )
  keras.utils.set_random_seed(0)
  return config.build_model(
    config.ModelConfig.make(name, modalities, "celeba_conv", "celeb_a", latent_dim=4, **kw)
  )


@pytest.fixture(scope="module")
def face_kl():
  return face_model("jmvae_kl")


def face_batch(n=3, seed=0):
  rng = np.random.default_rng(seed)
  return {
    "image": tf.constant(rng.uniform(-1, 1, (n, 16, 16, 3)), tf.float32),
    "attributes": tf.constant(rng.choice([-1.0, 1.0], (n, 40)), tf.float32),
  }


def test_figure6_rows_start_from_q_z_given_w_for_jmvae_kl(face_kl):
  attributes = {"attributes": face_batch()["attributes"]}
  names, rows = figures.figure6_rows(face_kl, attributes, [0, 2], seed=4)
  assert names == ["q(z|attributes)", "0 steps", "2 steps"]
  _, direct_seed = split([4, 3], 2)
  mean, variance = face_kl.subset_encoders["attributes"](attributes, training=False)
  expected = image_mean(face_kl, draw(mean, variance, direct_seed), attributes)
  np.testing.assert_allclose(rows[0], expected, atol=1e-5)
  assert all(r.shape == (3, 16, 16, 3) for r in rows)


def test_figure7_curves_are_the_conditional_log_likelihood_means(face_kl):
  dataset = [face_batch(2, 0), face_batch(2, 1)]
  directions = figures.face_directions(face_kl)
  assert [d[2] for d in directions] == ["log p(x~|w)", "log p(w~|x)"]
  curves = figures.figure7_curves({"kl": face_kl}, dataset, [0, 3], 2, 5, directions)
  for target, given, name in directions:
    expected = np.mean(
      np.concatenate(
        [
          evaluation.estimators.conditional_log_likelihood(
            face_kl, b, target, given, 2, 0, seed=(5, i)
          ).numpy()
          for i, b in enumerate(dataset)
        ]
      )
    )
    assert curves[name]["kl"] == pytest.approx([expected, expected], rel=1e-5)  # flat


def test_figure8_z_mean_is_the_encoder_mean_of_the_constructed_w(face_kl):
  base = face_batch(1)["attributes"].numpy()[0]
  chosen = [("Smiling", 31, 2.0), ("Male", 20, -2.0)]
  panels = figures.figure8_faces(face_kl, base, chosen, num_random=5, seed=3, zeta=0.6)
  eps = tf.random.stateless_normal([5, 4], tf.constant([3, 8], tf.int64)) * np.sqrt(0.6)
  for panel, (name, column, value) in zip(panels, chosen):
    assert (panel["name"], panel["value"]) == (name, value)
    w = base.copy()
    w[column] = value
    np.testing.assert_array_equal(panel["w"], w)
    mean, variance = face_kl.subset_encoders["attributes"](
      {"attributes": tf.constant(w[None])}, training=False
    )
    np.testing.assert_allclose(panel["z_mean"], mean[0], atol=1e-6)
    np.testing.assert_allclose(panel["sigma"], np.sqrt(variance[0]), atol=1e-6)
    np.testing.assert_allclose(panel["z_random"], mean + np.sqrt(variance) * eps, atol=1e-5)
    np.testing.assert_allclose(panel["average"], image_mean(face_kl, mean, {})[0], atol=1e-5)
    assert panel["random"].shape == (5, 16, 16, 3)
  assert not np.allclose(panels[0]["average"], panels[1]["average"])


def test_pca_2d_recovers_the_directions_of_largest_variance():
  rng = np.random.default_rng(0)
  points = rng.normal(size=(200, 3)) * np.array([5.0, 2.0, 0.1])
  projected, components = figures.pca_2d(points)
  np.testing.assert_allclose(np.abs(components), [[1, 0, 0], [0, 1, 0]], atol=0.05)
  assert projected.shape == (200, 2)
  np.testing.assert_allclose(projected.mean(0), 0, atol=1e-9)
  assert projected[:, 0].var() > projected[:, 1].var()


def test_figure9_output_is_x_plus_edited_minus_original_mean(face_kl):
  from jmvae_tf.inspection import editing

  x = face_batch(2)["image"].numpy()
  edits = [editing.Edit("Smiling", 31, 1.0), editing.Edit("Eyeglasses", 15, -1.0)]
  columns, grid = figures.figure9_grid(face_kl, x, edits)
  assert columns == ["input", "+Smiling", "-Eyeglasses"] and grid.shape == (2, 3, 16, 16, 3)
  np.testing.assert_array_equal(grid[:, 0], x)

  def mean_face(w):
    z, _ = face_kl.subset_encoders["attributes"]({"attributes": w}, training=False)
    return image_mean(face_kl, z, {})

  z_x, _ = face_kl.subset_encoders["image"]({"image": x}, training=False)
  w = face_kl.decoders["attributes"](z_x, training=False).mean().numpy()
  for c, edit in enumerate(edits, start=1):
    edited = w.copy()
    edited[:, edit.index] = edit.value
    expected = np.clip(x + mean_face(edited) - mean_face(w), -1, 1)
    np.testing.assert_allclose(grid[:, c], expected, atol=1e-5)


def test_face_figures_draw_and_save(face_kl, tmp_path):
  faces = face_batch(2)
  names, rows = figures.figure6_rows(face_kl, {"attributes": faces["attributes"]}, [0], 1)
  panels = figures.figure8_faces(
    face_kl, faces["attributes"].numpy()[0], [("Smiling", 31, 2.0)], 2, 0
  )
  drawn = {
    "figure6": figures.draw_figure6(faces["image"].numpy(), rows, names, "6", (-1.0, 1.0)),
    "figure7": figures.draw_figure7({"log p(x~|w)": {"kl": [1.0, 1.0]}}, [0, 1]),
    "figure8a": figures.draw_figure8a(panels, "8a", (-1.0, 1.0)),
    "figure8b": figures.draw_figure8b(panels, "8b"),
  }
  for name, fig in drawn.items():
    data = figures.save_figure(fig, str(tmp_path / f"{name}.png"))
    plt.close(fig)
    assert data.startswith(PNG_MAGIC) and (tmp_path / f"{name}.png").read_bytes() == data
