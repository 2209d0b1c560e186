"""pipelines/files.py (--dataset=files): a dataset.json over CSV, JSONL, .npz and PNG/JPEG
files in tiny folders written here; splits by files and by fractions; rows of several files
lined up; absences (a present column, an empty cell); fitting images; streaming images giving
what memory gives; one-line errors naming the file, line and column; and runners.train on it:
a bad spec refused in one line, a run resumed exactly."""

import concurrent.futures
import csv
import json

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from tiny_runs import run_module

import jmvae_tf
from jmvae_tf.core import missing
from jmvae_tf.core.data import DataError
from jmvae_tf.core.own_data import OwnDataSet
from pipelines import registry
from pipelines.files import FilesDataSet
from runners import flagutil
from runners import train as train_runner

# --- writing tiny data folders ---------------------------------------------------------------


def write_png(path, pixels):
  path.parent.mkdir(parents=True, exist_ok=True)
  tf.io.write_file(str(path), tf.io.encode_png(pixels))


def write_jpeg(path, pixels):
  path.parent.mkdir(parents=True, exist_ok=True)
  tf.io.write_file(str(path), tf.io.encode_jpeg(pixels, quality=95))


def write_csv(path, header, rows):
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)


def write_jsonl(path, records):
  path.write_text("".join(json.dumps(r) + "\n" for r in records))


def write_spec(root, modalities, **rest):
  spec = {"version": 1, "modalities": modalities, **rest}
  (root / "dataset.json").write_text(json.dumps(spec))
  return spec


def pixels(n, size=(6, 6), channels=1, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, *size, channels), dtype=np.uint8)


IMAGE_CLASS = [
  {"name": "image", "kind": "image", "column": "file"},
  {"name": "label", "kind": "class", "column": "label"},
]


def image_table(root, name, n, start=0, seed=0, size=(6, 6)):
  """n PNG images img/{start + i}.png and a CSV `name` (file, label, x): label cat/dog/emu in
  turn, x = the row's number; returns the pixels."""
  images = pixels(n, size, seed=seed)
  rows = []
  for i, image in enumerate(images):
    write_png(root / "img" / f"{start + i}.png", image)
    rows.append([f"img/{start + i}.png", ("cat", "dog", "emu")[(start + i) % 3], start + i])
  write_csv(root / name, ["file", "label", "x"], rows)
  return images


def image_folder(root, n_train=12, n_test=6):
  """train.csv and test.csv of image_table; the spec reads image, label and x."""
  train = image_table(root, "train.csv", n_train)
  test = image_table(root, "test.csv", n_test, start=n_train, seed=1)
  write_spec(
    root,
    IMAGE_CLASS + [{"name": "x", "kind": "vector", "columns": ["x"]}],
    splits={"train": "train.csv", "test": "test.csv"},
  )
  return train, test


def take(dataset, count):
  return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(count)]


def joined(batches, key):
  return np.concatenate([b[key] for b in batches])


def one_line_error(make, *words):
  """The DataError of make(): one line holding each of `words`."""
  with pytest.raises(DataError) as error:
    make()
  message = str(error.value)
  assert "\n" not in message, message
  for word in words:
    assert word in message, (word, message)
  return message


# --- every source ------------------------------------------------------------------------------


def test_a_csv_naming_png_images_with_a_class_and_a_vector(tmp_path):
  train, test = image_folder(tmp_path)
  data = FilesDataSet(str(tmp_path))
  assert registry.dataset_class("files") is FilesDataSet and data.name == "files"
  assert [(m.name, m.likelihood.kind, m.shape, m.family) for m in data.modalities] == [
    ("image", "bernoulli", (6, 6, 1), "image"),
    ("label", "categorical", (3,), "vector"),
    ("x", "gaussian", (1,), "vector"),
  ]
  assert (data.num_examples("train"), data.num_examples("test")) == (12, 6)
  assert data.classes_of["label"] == ("cat", "dog", "emu")
  np.testing.assert_array_equal(data.display_images("train", 12), train[..., 0])
  np.testing.assert_array_equal(data.display_images("test", 6), test[..., 0])
  batch = take(data.eval_dataset("test", 6), 1)[0]
  np.testing.assert_array_equal(batch["x"][:, 0], np.arange(12, 18))
  np.testing.assert_array_equal(batch["label"], np.eye(3)[np.arange(12, 18) % 3])
  assert set(np.unique(batch["image"])) <= {0.0, 1.0}
  assert data.metadata("test", 3)["label"].tolist() == ["cat", "dog", "emu"]
  assert data.spec_file == str(tmp_path / "dataset.json")
  # The spec file itself may be named, and the registry makes the same data set.
  named = registry.make_dataset("files", str(tmp_path / "dataset.json"))
  assert named.fingerprint() == data.fingerprint()


def test_jpeg_and_colour_png_images_read_as_tensorflow_decodes_them(tmp_path):
  """A JPEG column beside a PNG one; 3 channels; gaussian_fixed: pixel / 127.5 - 1."""
  colour, grey = pixels(4, (5, 7), 3), pixels(4, (5, 7), 1, seed=1)
  for i in range(4):
    write_png(tmp_path / f"c{i}.png", colour[i])
    write_jpeg(tmp_path / f"g{i}.jpg", grey[i])
  write_csv(tmp_path / "t.csv", ["c", "g"], [[f"c{i}.png", f"g{i}.jpg"] for i in range(4)])
  write_spec(
    tmp_path,
    [
      {"name": "colour", "kind": "image", "column": "c", "likelihood": "gaussian_fixed"},
      {"name": "grey", "kind": "image", "column": "g", "likelihood": "gaussian_fixed"},
    ],
    splits={"train": "t.csv"},
  )
  data = FilesDataSet(str(tmp_path))
  assert [m.shape for m in data.modalities] == [(5, 7, 3), (5, 7, 1)]
  batch = take(data.eval_dataset("train", 4), 1)[0]
  np.testing.assert_array_equal(batch["colour"], colour.astype(np.float32) / 127.5 - 1.0)
  decoded = np.stack(
    [tf.io.decode_jpeg(tf.io.read_file(str(tmp_path / f"g{i}.jpg"))).numpy() for i in range(4)]
  )
  np.testing.assert_allclose(batch["grey"], decoded / 127.5 - 1.0, atol=1e-6)
  assert np.abs(decoded.astype(int) - grey).mean() < 10  # a JPEG, close to what was written


def test_a_jsonl_table_with_nulls_and_absent_keys_as_missing_values(tmp_path):
  """Numbers, booleans (attributes), text classes; null and an absent key are absences,
  counted; missing=drop keeps the complete rows."""
  records = [
    {"v1": 0.5, "v2": -1, "a1": True, "a2": False, "c": "x"},
    {"v1": 1.5, "v2": 2, "a1": False, "a2": True, "c": "y"},
    {"v1": None, "v2": 3, "a1": True, "a2": True, "c": "x"},
    {"v1": 2.5, "v2": 4, "a1": True, "a2": False},
    {"v1": 3.5, "v2": 5, "a1": False, "a2": False, "c": "y"},
  ]
  write_jsonl(tmp_path / "t.jsonl", records)
  write_spec(
    tmp_path,
    [
      {"name": "v", "kind": "vector", "columns": ["v1", "v2"]},
      {"name": "a", "kind": "attributes", "columns": ["a1", "a2"], "likelihood": "bernoulli"},
      {"name": "c", "kind": "class", "column": "c"},
    ],
    splits={"train": "t.jsonl"},
  )
  one_line_error(
    lambda: FilesDataSet(str(tmp_path)), "train: 1 lack 'v', 1 lack 'c' (of 5)", "missing=drop"
  )
  data = FilesDataSet(str(tmp_path), missing="drop")
  assert data.counts == {"train": {"v": 1, "a": 0, "c": 1}}
  batch = take(data.eval_dataset("train", 3), 1)[0]
  np.testing.assert_array_equal(batch["v"], [[0.5, -1], [1.5, 2], [3.5, 5]])
  np.testing.assert_array_equal(batch["a"], [[1, 0], [0, 1], [0, 0]])
  np.testing.assert_array_equal(batch["c"], [[1, 0], [0, 1], [0, 1]])


def test_npz_arrays_read_as_the_same_arrays_given_to_own_data_set(tmp_path):
  """uint8 images [N, H, W] in an .npz, a vector [N, 3], fixed-width text classes and
  {-1, 1} attributes: the batches, pictures and fingerprint of OwnDataSet on those arrays."""
  rng = np.random.default_rng(0)
  arrays = {
    "pix": rng.integers(0, 256, (10, 4, 5), dtype=np.uint8),
    "feat": rng.normal(size=(10, 3)).astype(np.float32),
    "kind": np.array(["b", "a", "c", "a", "b", "c", "a", "b", "c", "a"]),
    "flags": rng.choice([-1, 1], (10, 2)),
  }
  np.savez(tmp_path / "all.npz", **arrays)
  write_spec(
    tmp_path,
    [
      {"name": "pix", "kind": "image", "column": "pix"},
      {"name": "feat", "kind": "vector", "column": "feat"},
      {"name": "kind", "kind": "class", "column": "kind"},
      {"name": "flags", "kind": "attributes", "column": "flags"},
    ],
    splits={"train": "all.npz"},
  )
  data = FilesDataSet(str(tmp_path))
  same = OwnDataSet(
    {"pix": "image", "feat": "vector", "kind": "class", "flags": "attributes"}, train=arrays
  )
  assert data.modalities == same.modalities and data.fingerprint() == same.fingerprint()
  for a, b in zip(take(data.train_dataset(5, seed=1), 4), take(same.train_dataset(5, seed=1), 4)):
    for key in arrays:
      np.testing.assert_array_equal(a[key], b[key])
  np.testing.assert_array_equal(data.display_images("train", 10), arrays["pix"])


# --- splits --------------------------------------------------------------------------------


def test_splits_by_files_and_validation_held_out_of_train(tmp_path):
  image_table(tmp_path, "a.csv", 9)
  image_table(tmp_path, "b.csv", 4, start=9)
  image_table(tmp_path, "c.csv", 5, start=13)
  write_spec(
    tmp_path, IMAGE_CLASS, splits={"train": "a.csv", "validation": "b.csv", "test": ["c.csv"]}
  )
  data = FilesDataSet(str(tmp_path))
  assert [data.num_examples(s) for s in ("train", "validation", "test")] == [9, 4, 5]
  assert data.held_out_split() == "validation"
  # Without a validation split, validation=True holds out the rows after num_train.
  write_spec(tmp_path, IMAGE_CLASS, splits={"train": "a.csv"})
  data = FilesDataSet(str(tmp_path), num_train=6, validation=True)
  assert [data.num_examples(s) for s in ("train", "validation", "test")] == [6, 3, 0]
  np.testing.assert_array_equal(
    data.display_images("validation", 3), FilesDataSet(str(tmp_path)).display_images("train", 9)[6:]
  )
  one_line_error(
    lambda: FilesDataSet(str(tmp_path), validation=True), "no validation split", "9 training rows"
  )


def _fraction_splits(root, seed):
  write_spec(
    root,
    [{"name": "x", "kind": "vector", "column": "x"}, {"name": "c", "kind": "class", "column": "c"}],
    files=["all.csv"],
    fractions={"validation": 0.2, "test": 0.1},
    seed=seed,
  )
  data = FilesDataSet(str(root))
  return {
    split: joined(take(data.eval_dataset(split, 100), 1), "x")[:, 0].astype(int)
    for split in ("train", "validation", "test")
  }


def test_splits_by_fractions_are_disjoint_complete_and_reproducible(tmp_path):
  write_csv(tmp_path / "all.csv", ["x", "c"], [[i, i % 2] for i in range(40)])
  splits = _fraction_splits(tmp_path, seed=3)
  assert [len(splits[s]) for s in ("train", "validation", "test")] == [28, 8, 4]
  assert sorted(np.concatenate(list(splits.values())).tolist()) == list(range(40))
  again = _fraction_splits(tmp_path, seed=3)
  assert all(np.array_equal(splits[s], again[s]) for s in splits)
  other = _fraction_splits(tmp_path, seed=4)
  assert not np.array_equal(splits["test"], other["test"])


def test_several_files_of_a_split_line_up_row_by_row(tmp_path):
  """A CSV of image paths and an .npz of vectors and classes: row i of each is example i."""
  image_table(tmp_path, "train.csv", 8)
  np.savez(
    tmp_path / "train.npz",
    tag=np.arange(8, dtype=np.float32)[:, None] * [1.0, -1.0],
    group=np.arange(8) % 2,
  )
  write_spec(
    tmp_path,
    IMAGE_CLASS
    + [
      {"name": "tag", "kind": "vector", "column": "tag"},
      {"name": "group", "kind": "class", "column": "group"},
      {"name": "x", "kind": "vector", "columns": ["x"]},
    ],
    splits={"train": ["train.csv", "train.npz"]},
  )
  data = FilesDataSet(str(tmp_path))
  batches = take(data.train_dataset(4, seed=0), 2)
  tag, x = joined(batches, "tag"), joined(batches, "x")
  assert sorted(tag[:, 0].astype(int).tolist()) == list(range(8))  # an epoch, shuffled
  np.testing.assert_array_equal(tag[:, 0], x[:, 0])
  np.testing.assert_array_equal(tag[:, 1], -x[:, 0])
  np.testing.assert_array_equal(joined(batches, "group").argmax(-1), tag[:, 0].astype(int) % 2)
  np.testing.assert_array_equal(joined(batches, "label").argmax(-1), tag[:, 0].astype(int) % 3)


# --- absences ----------------------------------------------------------------------------


def test_a_present_column_marks_absences(tmp_path):
  """present 0/false marks the modality absent whatever its cell holds; counted, refused,
  dropped."""
  image_table(tmp_path, "train.csv", 6)
  rows = list(csv.reader(open(tmp_path / "train.csv")))
  header, rows = rows[0] + ["has_x"], rows[1:]
  for i, row in enumerate(rows):
    row.append(("1", "true", "0", "TRUE", "false", "1.0")[i])
  rows[2][2] = "not a number"  # absent: never read as a number
  write_csv(tmp_path / "train.csv", header, rows)
  write_spec(
    tmp_path,
    IMAGE_CLASS + [{"name": "x", "kind": "vector", "columns": ["x"], "present": "has_x"}],
    splits={"train": "train.csv"},
  )
  one_line_error(lambda: FilesDataSet(str(tmp_path)), "train: 2 lack 'x' (of 6)")
  data = FilesDataSet(str(tmp_path), missing="drop")
  assert data.num_examples("train") == 4
  np.testing.assert_array_equal(take(data.eval_dataset("train", 4), 1)[0]["x"][:, 0], [0, 1, 3, 5])


def test_an_empty_cell_is_missing_refused_then_dropped(tmp_path, capsys):
  image_table(tmp_path, "train.csv", 9)
  rows = list(csv.reader(open(tmp_path / "train.csv")))
  rows[2][1] = ""  # row 1 lacks its label
  rows[4][0] = " "  # row 3 lacks its image
  rows[8][2] = ""  # row 7 lacks x
  write_csv(tmp_path / "train.csv", rows[0], rows[1:])
  write_spec(
    tmp_path,
    IMAGE_CLASS + [{"name": "x", "kind": "vector", "columns": ["x"]}],
    splits={"train": "train.csv"},
  )
  message = one_line_error(
    lambda: FilesDataSet(str(tmp_path)),
    "train: 1 lack 'image', 1 lack 'label', 1 lack 'x' (of 9)",
  )
  assert message.startswith("files: some examples lack a modality")
  for in_memory in ("yes", "no"):
    data = FilesDataSet(str(tmp_path), missing="drop", in_memory=in_memory)
    assert data.num_examples("train") == 6
    np.testing.assert_array_equal(
      take(data.eval_dataset("train", 6), 1)[0]["x"][:, 0], [0, 2, 4, 5, 6, 8]
    )
  assert "train 3 of 9" in capsys.readouterr().err


@pytest.mark.parametrize("in_memory", ["yes", "no"])
def test_empty_cells_kept_train_with_masks_and_held_out_splits_stay_complete(
  tmp_path, capsys, in_memory
):
  """missing=keep: the training examples keep their gaps (masks in every batch, the absent
  values zeros, a missing image read from no file), the test split its complete examples; a
  JMVAE-kl trains on them (its loss falls)."""
  image_table(tmp_path, "train.csv", 10)
  image_table(tmp_path, "test.csv", 4, start=10)
  rows = list(csv.reader(open(tmp_path / "train.csv")))
  rows[2][1] = ""  # row 1 lacks its label
  rows[4][0] = ""  # row 3 lacks its image
  write_csv(tmp_path / "train.csv", rows[0], rows[1:])
  rows = list(csv.reader(open(tmp_path / "test.csv")))
  rows[1][1] = ""  # test row 0 lacks its label: left out of the held-out split
  write_csv(tmp_path / "test.csv", rows[0], rows[1:])
  write_spec(tmp_path, IMAGE_CLASS, splits={"train": "train.csv", "test": "test.csv"})
  data = FilesDataSet(str(tmp_path), missing="keep", in_memory=in_memory)
  assert "test 1 of 4" in capsys.readouterr().err
  assert data.num_examples("train") == 10 and data.num_examples("test") == 3
  table = data.presence(0)
  np.testing.assert_array_equal(np.flatnonzero(~table["label"]), [1])
  np.testing.assert_array_equal(np.flatnonzero(~table["image"]), [3])
  batch = next(iter(data.train_dataset(10, 0)))
  present = {k: v.numpy() for k, v in batch[missing.PRESENT].items()}
  assert (~present["label"]).sum() == 1 and (~present["image"]).sum() == 1
  assert not batch["label"].numpy()[~present["label"]].any()
  assert not batch["image"].numpy()[~present["image"]].any()
  assert missing.PRESENT not in next(iter(data.eval_dataset("test", 3)))
  model = jmvae_tf.make_model("jmvae_kl", data, latent_dim=4)
  result = jmvae_tf.train(model, data, epochs=8, batch_size=5, warmup_epochs=0, verbose=0)
  assert result.history["loss"][-1] < result.history["loss"][0]


def test_a_share_hidden_from_a_files_data_set_keeps_its_own_gaps_too(tmp_path):
  image_table(tmp_path, "train.csv", 10)
  rows = list(csv.reader(open(tmp_path / "train.csv")))
  rows[2][1] = ""
  write_csv(tmp_path / "train.csv", rows[0], rows[1:])
  write_spec(tmp_path, IMAGE_CLASS, splits={"train": "train.csv"})
  data = FilesDataSet(str(tmp_path), missing="image:0.5")
  assert data.options == ("missing=image:0.5",) and data.hidden == (("image", 0.5),)
  table = data.presence(0)
  assert not table["label"][1] and (~table["image"]).sum() == 5
  one_line_error(lambda: FilesDataSet(str(tmp_path), missing="impute"), "choose from")
  one_line_error(lambda: FilesDataSet(str(tmp_path), missing="image:1"), "[0, 1)")


# --- images: fitting, streaming ----------------------------------------------------------------


@pytest.mark.parametrize("fit", ["resize", "crop"])
def test_images_of_other_sizes_are_fitted_to_the_declared_size(tmp_path, fit):
  sizes = [(6, 6), (9, 4), (3, 12), (10, 10)]
  rows = []
  for i, size in enumerate(sizes):
    write_png(tmp_path / f"{i}.png", np.full((*size, 1), 40 * i, np.uint8))
    rows.append([f"{i}.png", i % 2])
  write_csv(tmp_path / "t.csv", ["file", "label"], rows)
  image = {"name": "image", "kind": "image", "column": "file", "size": [5, 4], "fit": fit}
  write_spec(tmp_path, [image, IMAGE_CLASS[1]], splits={"train": "t.csv"})
  for in_memory in ("yes", "no"):
    data = FilesDataSet(str(tmp_path), in_memory=in_memory)
    assert data.modalities[0].shape == (5, 4, 1)
    pictures = data.display_images("train", 4)
    assert pictures.shape == (4, 5, 4)
    np.testing.assert_array_equal(pictures, np.arange(4)[:, None, None] * 40 + np.zeros((4, 5, 4)))
  # Without a fit, the first image of another size is an error.
  write_spec(tmp_path, IMAGE_CLASS, splits={"train": "t.csv"})
  one_line_error(
    lambda: FilesDataSet(str(tmp_path)),
    f"{tmp_path / 't.csv'}: line 3, column 'file': image '1.png' is 9x4, not 6x6",
  )


def test_crop_takes_the_centre_and_resize_the_whole(tmp_path):
  """A 4x12 image, left third black, the rest white, fitted to 4x4: the crop is the centre
  third (all white), the resize keeps the dark left."""
  image = np.full((4, 12, 1), 255, np.uint8)
  image[:, :4] = 0
  write_png(tmp_path / "a.png", image)
  write_png(tmp_path / "b.png", image)
  write_csv(tmp_path / "t.csv", ["file", "label"], [["a.png", 0], ["b.png", 1]])
  seen = {}
  for fit in ("resize", "crop"):
    image_entry = {"name": "image", "kind": "image", "column": "file", "size": [4, 4], "fit": fit}
    write_spec(tmp_path, [image_entry, IMAGE_CLASS[1]], splits={"train": "t.csv"})
    seen[fit] = FilesDataSet(str(tmp_path)).display_images("train", 1)[0]
  assert (seen["crop"] == 255).all()
  assert seen["resize"][:, 0].max() < 128 and (seen["resize"][:, -1] == 255).all()


def test_streamed_images_give_what_images_in_memory_give(tmp_path):
  """in_memory=no reads each batch's files: the same training and held-out batches, pictures
  and fingerprint as in_memory=yes (and auto, for this small folder)."""
  image_folder(tmp_path)
  made = {m: FilesDataSet(str(tmp_path), in_memory=m) for m in ("yes", "no", "auto")}
  assert made["no"]._splits["train"].values["image"].dtype == object  # paths: it streams
  assert made["yes"]._splits["train"].values["image"].dtype == np.uint8
  assert made["yes"].fingerprint() == made["no"].fingerprint() == made["auto"].fingerprint()
  reads = {
    m: (
      take(d.train_dataset(4, seed=2, start_epoch=1), 6),
      take(d.eval_dataset("test", 4, seed=1), 2),
      d.display_images("test", 6),
    )
    for m, d in made.items()
  }
  for m in ("no", "auto"):
    for ours, theirs in zip(reads["yes"][:2], reads[m][:2]):
      for key in ("image", "label", "x"):
        np.testing.assert_array_equal(joined(ours, key), joined(theirs, key))
    np.testing.assert_array_equal(reads["yes"][2], reads[m][2])


def test_the_fingerprint_follows_the_files(tmp_path):
  """Another pixel in a training image changes it; another test image does not."""
  image_folder(tmp_path)
  before = FilesDataSet(str(tmp_path)).fingerprint()
  write_png(tmp_path / "img" / "3.png", pixels(1, seed=9)[0])
  after = FilesDataSet(str(tmp_path)).fingerprint()
  assert after != before
  write_png(tmp_path / "img" / "15.png", pixels(1, seed=9)[0])
  assert FilesDataSet(str(tmp_path)).fingerprint() == after


# --- bad input: one line naming the file, the line and the column -----------------------------


def _replace_cell(root, row, column, value, name="train.csv"):
  rows = list(csv.reader(open(root / name)))
  rows[row + 1][column] = value
  write_csv(root / name, rows[0], rows[1:])


def _spec_with(root, **changes):
  spec = json.loads((root / "dataset.json").read_text())
  spec.update(changes)
  (root / "dataset.json").write_text(json.dumps(spec))


def _modalities_plus(root, *extra):
  spec = json.loads((root / "dataset.json").read_text())
  _spec_with(root, modalities=spec["modalities"] + list(extra))


def case_missing_csv(root):
  (root / "test.csv").unlink()
  return [f"{root / 'test.csv'}: no such file"]


def case_missing_image(root):
  _replace_cell(root, 4, 0, "img/gone.png")
  return [f"{root / 'train.csv'}: line 6, column 'file': image 'img/gone.png': no such file"]


def case_not_an_image(root):
  (root / "img" / "5.png").write_text("just some text")
  return [f"{root / 'train.csv'}: line 7, column 'file': image 'img/5.png': not a PNG or JPEG"]


def case_damaged_image(root):
  """A PNG whose header is whole and its pixels cut off: found when decoding."""
  path = root / "img" / "2.png"
  path.write_bytes(path.read_bytes()[:40])
  return [f"{path}: a damaged image that cannot be decoded"]


def case_image_of_another_size(root):
  write_png(root / "img" / "14.png", pixels(1, (6, 7))[0])
  return [f"{root / 'test.csv'}: line 4, column 'file': image 'img/14.png' is 6x7, not 6x6"]


def case_image_of_another_declared_size(root):
  spec = json.loads((root / "dataset.json").read_text())
  spec["modalities"][0]["size"] = [5, 5]
  _spec_with(root, modalities=spec["modalities"])
  return [f"{root / 'train.csv'}: line 2, column 'file'", "is 6x6, not 5x5, the declared size"]


def case_text_in_a_numeric_column(root):
  _replace_cell(root, 3, 2, "three")
  return [f"{root / 'train.csv'}: line 5, column 'x': 'three' is not a number"]


def case_nan_in_a_csv(root):
  _replace_cell(root, 7, 2, "nan")
  return [f"{root / 'train.csv'}: line 9, column 'x': NaN or an infinite value"]


def case_inf_in_a_csv(root):
  _replace_cell(root, 1, 2, "-inf", name="test.csv")
  return [f"{root / 'test.csv'}: line 3, column 'x': NaN or an infinite value"]


def case_a_class_not_in_the_list(root):
  spec = json.loads((root / "dataset.json").read_text())
  spec["modalities"][1]["classes"] = ["cat", "dog"]
  _spec_with(root, modalities=spec["modalities"])
  return [f"{root / 'train.csv'}: line 4, column 'label': class 'emu' is not in the class list"]


def case_row_counts_disagree(root):
  np.savez(root / "more.npz", z=np.zeros((11, 2), np.float32))
  _spec_with(root, splits={"train": ["train.csv", "more.npz"], "test": "test.csv"})
  _modalities_plus(root, {"name": "z", "kind": "vector", "column": "z"})
  return [
    "the train files have different row counts",
    f"'{root / 'train.csv'}': 12",
    f"'{root / 'more.npz'}': 11",
  ]


def case_a_column_no_file_has(root):
  _modalities_plus(root, {"name": "y", "kind": "vector", "columns": ["y"]})
  return [f"{root / 'train.csv'}: no column 'y' (modality 'y', train split)"]


def case_duplicate_modality_name(root):
  _modalities_plus(root, {"name": "label", "kind": "vector", "columns": ["x"]})
  return [f"{root / 'dataset.json'}: modality name 'label' is used twice"]


def case_unknown_spec_key(root):
  _spec_with(root, shuffle=True)
  return [f"{root / 'dataset.json'}: unknown key 'shuffle'"]


def case_unknown_modality_key(root):
  _modalities_plus(root, {"name": "y", "kind": "vector", "column": "x", "colour": "red"})
  return [f"{root / 'dataset.json'} modality 'y': unknown key 'colour' for a vector"]


def case_version_2(root):
  _spec_with(root, version=2)
  return [f"{root / 'dataset.json'}: version 2; this jmvae-tf reads version 1"]


def case_spec_not_json(root):
  (root / "dataset.json").write_text('{"version": 1,\n "modalities": [}')
  return [f"{root / 'dataset.json'}: not JSON", "line 2"]


def case_npz_of_objects(root):
  np.savez(root / "more.npz", z=np.array([{"a": 1}] * 12, dtype=object))
  _spec_with(root, splits={"train": ["train.csv", "more.npz"], "test": "test.csv"})
  _modalities_plus(root, {"name": "z", "kind": "vector", "column": "z"})
  return [f"{root / 'more.npz'}: array 'z' holds Python objects", "no pickles"]


def case_malformed_jsonl_line(root):
  write_jsonl(root / "extra.jsonl", [{"z": 1}] * 12)
  text = (root / "extra.jsonl").read_text().splitlines()
  text[6] = '{"z": 1,}'
  (root / "extra.jsonl").write_text("\n".join(text) + "\n")
  _spec_with(root, splits={"train": ["train.csv", "extra.jsonl"], "test": "test.csv"})
  return [f"{root / 'extra.jsonl'}: line 7 is not JSON"]


def case_wrong_number_of_cells(root):
  lines = (root / "train.csv").read_text().splitlines()
  lines[5] += ",extra"
  (root / "train.csv").write_text("\n".join(lines) + "\n")
  return [f"{root / 'train.csv'}: line 6 has 4 cells, the header 3"]


def case_a_file_of_another_kind(root):
  (root / "train.txt").write_text("file,label,x\n")
  _spec_with(root, splits={"train": "train.txt"})
  return [f"{root / 'train.txt'}: a data file is .csv, .jsonl or .npz, not .txt"]


def case_bad_present_value(root):
  rows = list(csv.reader(open(root / "train.csv")))
  write_csv(root / "train.csv", rows[0] + ["p"], [r + ["yes"] for r in rows[1:]])
  spec = json.loads((root / "dataset.json").read_text())
  spec["modalities"][2]["present"] = "p"
  _spec_with(root, modalities=spec["modalities"])
  return [f"{root / 'train.csv'}: line 2, column 'p': 'yes' is not a boolean"]


BAD_INPUTS = {name[5:]: case for name, case in list(globals().items()) if name.startswith("case_")}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_naming_the_file_line_and_column(tmp_path, case):
  image_folder(tmp_path)
  words = BAD_INPUTS[case](tmp_path)
  one_line_error(lambda: FilesDataSet(str(tmp_path), in_memory="yes"), *words)


def test_bad_options_and_no_spec_are_one_line(tmp_path):
  one_line_error(lambda: FilesDataSet(None), "--dataset=files needs --data_dir")
  one_line_error(lambda: FilesDataSet(str(tmp_path)), f"{tmp_path / 'dataset.json'}: no such file")
  image_folder(tmp_path)
  one_line_error(lambda: FilesDataSet(str(tmp_path), in_memory="maybe"), "in_memory='maybe'")
  one_line_error(lambda: FilesDataSet(str(tmp_path), cache="yes"), "files has no option 'cache'")


# --- line numbers past blank lines; no rows; an absent image needs no file -----------------


def test_a_bad_cell_after_a_blank_csv_line_is_named_by_its_line(tmp_path):
  (tmp_path / "t.csv").write_text("x,c\n1,a\n\n2,b\nzz,a\n")
  write_spec(
    tmp_path,
    [
      {"name": "x", "kind": "vector", "columns": ["x"]},
      {"name": "c", "kind": "class", "column": "c"},
    ],
    splits={"train": "t.csv"},
  )
  one_line_error(lambda: FilesDataSet(str(tmp_path)), "t.csv: line 5, column 'x'")


def test_a_bad_value_after_a_blank_jsonl_line_is_named_by_its_line(tmp_path):
  (tmp_path / "t.jsonl").write_text('{"x": 1, "c": "a"}\n\n{"x": "zz", "c": "b"}\n')
  write_spec(
    tmp_path,
    [
      {"name": "x", "kind": "vector", "columns": ["x"]},
      {"name": "c", "kind": "class", "column": "c"},
    ],
    splits={"train": "t.jsonl"},
  )
  one_line_error(lambda: FilesDataSet(str(tmp_path)), "t.jsonl: line 3, column 'x'")


def test_a_csv_without_rows_is_a_data_error_naming_it(tmp_path):
  (tmp_path / "t.csv").write_text("x,y\n")
  write_spec(
    tmp_path, [{"name": "v", "kind": "vector", "columns": ["x", "y"]}], splits={"train": "t.csv"}
  )
  one_line_error(lambda: FilesDataSet(str(tmp_path)), "t.csv")


def test_an_image_marked_absent_needs_no_file(tmp_path):
  image_table(tmp_path, "train.csv", 4)
  rows = list(csv.reader(open(tmp_path / "train.csv")))
  rows[3][0] = "img/never_made.png"
  write_csv(tmp_path / "train.csv", rows[0] + ["p"], [r + [p] for r, p in zip(rows[1:], "1101")])
  image = dict(IMAGE_CLASS[0], present="p")
  write_spec(tmp_path, [image, IMAGE_CLASS[1]], splits={"train": "train.csv"})
  assert FilesDataSet(str(tmp_path), missing="drop").num_examples("train") == 3


# --- runners.train on --dataset=files ------------------------------------------------------


def run_train_in_process(monkeypatch, capsys, *args):
  """runners.train's main in this process (as tests/test_runners_train.py runs it): its exit
  status and stderr."""
  fv = flags.FlagValues()
  train_runner.define_flags(fv)
  monkeypatch.setattr(train_runner, "FLAGS", fv)
  capsys.readouterr()
  try:
    train_runner.main(flagutil.parse_or_exit(["train.py", *args, "--intra_op_threads=0"], fv))
    status = 0
  except SystemExit as e:
    status = e.code
  return status, capsys.readouterr().err


def test_a_bad_spec_stops_runners_train_with_one_line_before_anything_is_written(
  tmp_path, monkeypatch, capsys
):
  image_folder(tmp_path)
  _spec_with(tmp_path, version=2)
  model_dir = tmp_path / "run"
  status, err = run_train_in_process(
    monkeypatch,
    capsys,
    "--dataset=files",
    f"--data_dir={tmp_path}",
    f"--model_dir={model_dir}",
    "--epochs=1",
    "--batch_size=4",
  )
  lines = [line for line in err.splitlines() if line.strip()]
  assert status not in (0, None) and len(lines) == 1, (status, err)
  assert "Traceback" not in err
  assert f"{tmp_path / 'dataset.json'}: version 2; this jmvae-tf reads version 1" in lines[0]
  assert not model_dir.exists()


def test_runners_train_on_files_resumes_exactly(tmp_path):
  """Two epochs straight, or one and then a resumed second, give the same checkpoint tensor by
  tensor."""
  data_dir = tmp_path / "data"
  data_dir.mkdir()
  image_folder(data_dir, n_train=32, n_test=8)

  def train(model_dir, epochs, verbose=0):
    return run_module(
      "runners.train",
      "--dataset=files",
      f"--data_dir={data_dir}",
      f"--model_dir={model_dir}",
      f"--epochs={epochs}",
      "--batch_size=8",
      "--latent_dim=2",
      "--architecture_options=hidden=16",
      f"--verbose={verbose}",
    )

  straight, resumed = tmp_path / "straight", tmp_path / "resumed"
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    runs = [pool.submit(train, straight, 2), pool.submit(train, resumed, 1)]
    for run in runs:
      assert run.result().returncode == 0, run.result().stderr[-2000:]
  assert sorted(p.name for p in (resumed / "ckpt").glob("*.index")) == ["ckpt-1.index"]
  second = train(resumed, 2, verbose=2)
  assert second.returncode == 0, second.stderr[-2000:]
  out = second.stdout + second.stderr
  assert "Resuming" in out and "Epoch 2/2" in out and "Epoch 1/2" not in out, out[-2000:]

  a = tf.train.load_checkpoint(str(straight / "ckpt" / "ckpt-2"))
  b = tf.train.load_checkpoint(str(resumed / "ckpt" / "ckpt-2"))
  names = sorted(a.get_variable_to_shape_map())
  assert len(names) > 20 and names == sorted(b.get_variable_to_shape_map())
  for name in names:
    np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)
  assert json.loads((straight / "run.json").read_text())["dataset"] == "files"


# --- what a review found ---------------------------------------------------------------------


def test_a_bad_component_of_an_npz_array_is_named_not_an_index_error(tmp_path):
  """A NaN at row 4, component 2 of one [N, 3] array: the file, array, row and component."""
  values = np.zeros((10, 3))
  values[4, 2] = np.nan
  np.savez(tmp_path / "d.npz", v=values, lab=np.arange(10) % 2)
  write_spec(
    tmp_path,
    [
      {"name": "v", "kind": "vector", "column": "v"},
      {"name": "lab", "kind": "class", "column": "lab"},
    ],
    splits={"train": "d.npz"},
  )
  one_line_error(lambda: FilesDataSet(str(tmp_path)), "d.npz: array 'v' row 4, component 2")


def test_num_train_counts_complete_examples_after_missing_drop(tmp_path):
  """missing=drop first, then the first num_train complete examples (the driver checks that
  the data set has num_train)."""
  rows = [[str(i), ("a", "b")[i % 2]] for i in range(8)]
  rows[1][0] = ""
  write_csv(tmp_path / "t.csv", ["x", "c"], rows)
  write_spec(
    tmp_path,
    [
      {"name": "x", "kind": "vector", "columns": ["x"]},
      {"name": "c", "kind": "class", "column": "c"},
    ],
    splits={"train": "t.csv"},
  )
  data = FilesDataSet(str(tmp_path), num_train=5, missing="drop")
  assert data.num_examples("train") == 5
  batch = next(iter(data.eval_dataset("train", 5)))
  np.testing.assert_array_equal(batch["x"].numpy()[:, 0], [0, 2, 3, 4, 5])


def test_the_fit_is_part_of_the_fingerprint(tmp_path):
  """Same files, same size, resize against crop: other training images, another fingerprint;
  in_memory given is recorded with the options."""
  image_table(tmp_path, "train.csv", 6, size=(8, 6))
  prints = []
  for fit in ("resize", "crop"):
    image = dict(IMAGE_CLASS[0], size=[4, 4], channels=1, fit=fit)
    write_spec(tmp_path, [image, IMAGE_CLASS[1]], splits={"train": "train.csv"})
    data = FilesDataSet(str(tmp_path), in_memory="no", missing="drop")
    prints.append(data.fingerprint())
    assert data.options == ("in_memory=no", "missing=drop")
  assert prints[0] != prints[1]


def test_attribute_columns_name_the_projectors_metadata(tmp_path):
  """An attributes modality read from several columns: the Projector's metadata columns are
  the spec's column names (a name list in Python, else name_i)."""
  rows = [[str(i % 2), str((i // 2) % 2), ("a", "b")[i % 2]] for i in range(6)]
  write_csv(tmp_path / "t.csv", ["Smiling", "Eyeglasses", "c"], rows)
  write_spec(
    tmp_path,
    [
      {"name": "attrs", "kind": "attributes", "columns": ["Smiling", "Eyeglasses"]},
      {"name": "c", "kind": "class", "column": "c"},
    ],
    splits={"train": "t.csv", "test": "t.csv"},
  )
  metadata = FilesDataSet(str(tmp_path)).metadata("test", 4)
  assert list(metadata) == ["Smiling", "Eyeglasses", "c"]
  np.testing.assert_array_equal(metadata["Smiling"], [0, 1, 0, 1])


# --- a text column: captions ------------------------------------------------------------------

TRAIN_CAPTIONS = [
  "A red cat.",
  "the blue dog",
  "a small red bird",
  "Big dog, small cat!",
  "the cat sat on the mat",
  "red and blue",
  "a dog",
  "the bird sings",
]
# "zebra" is in no training caption: it reads as [UNK].
TEST_CAPTIONS = ["a red dog", "the zebra cat", "blue bird"]
# What they read as: lower case, no punctuation.
TRAIN_READ = [
  "a red cat",
  "the blue dog",
  "a small red bird",
  "big dog small cat",
  "the cat sat on the mat",
  "red and blue",
  "a dog",
  "the bird sings",
]
TEST_READ = ["a red dog", "the [UNK] cat", "blue bird"]
CAPTION = {"name": "caption", "kind": "text", "column": "caption"}


def caption_folder(root, kind="csv", train=TRAIN_CAPTIONS, test=TEST_CAPTIONS, **caption):
  """train and test files of PNG images (csv) or a vector x (jsonl), and a caption column;
  the spec reads both; returns the training images (csv) or None."""
  images = None
  for split, captions in (("train", train), ("test", test)):
    start = 0 if split == "train" else len(train)
    if kind == "csv":
      part = pixels(len(captions), seed=start)
      images = part if split == "train" else images
      for i, image in enumerate(part):
        write_png(root / "img" / f"{start + i}.png", image)
      rows = [[f"img/{start + i}.png", c] for i, c in enumerate(captions)]
      write_csv(root / f"{split}.csv", ["file", "caption"], rows)
    else:
      write_jsonl(
        root / f"{split}.jsonl",
        [{"x": float(start + i), "caption": c} for i, c in enumerate(captions)],
      )
  first = (
    {"name": "image", "kind": "image", "column": "file"}
    if kind == "csv"
    else {"name": "x", "kind": "vector", "columns": ["x"]}
  )
  write_spec(
    root,
    [first, dict(CAPTION, **caption)],
    splits={"train": f"train.{kind}", "test": f"test.{kind}"},
  )
  return images


def captions_of(data, split, n):
  """The captions a split's batches hold, decoded by the modality's vocabulary, and the
  values."""
  values = joined(take(data.eval_dataset(split, 4), 10), "caption")
  assert values.shape[0] == n
  return data.modalities[-1].text.decode_numpy(values), values


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_text_column_is_tokens_over_the_training_captions_words(tmp_path, kind):
  """Beside PNG images (CSV) or a vector (JSONL): a tokens modality of T = the longest
  training caption's words and its end, V = the training words and the two reserved tokens;
  batches decode back to the captions (an unseen test word as [UNK]), padding rows all zero;
  the captions are held as word ids, not one-hots."""
  images = caption_folder(tmp_path, kind)
  data = FilesDataSet(str(tmp_path))
  words = {w for c in TRAIN_READ for w in c.split()}
  text = data.modalities[-1]
  assert (text.name, text.likelihood.kind, text.family) == ("caption", "tokens", "sequence")
  assert text.shape == (7, len(words) + 2) and set(text.text.words) == words
  assert text.vocabulary[:2] == ("[UNK]", "<eos>") and text.text.max_tokens == 7
  assert data.vocabularies["caption"].tokens == text.vocabulary
  train, values = captions_of(data, "train", 8)
  assert train == TRAIN_READ
  test, test_values = captions_of(data, "test", 3)
  assert test == TEST_READ
  assert values.dtype == np.float32 and values.shape == (8, 7, len(words) + 2)
  lengths = np.array([len(c.split()) for c in TRAIN_READ])
  sums = values.sum(axis=-1)
  np.testing.assert_array_equal(sums, np.arange(7)[None, :] <= lengths[:, None])
  np.testing.assert_array_equal(values.argmax(-1)[np.arange(8), lengths], 1)  # EOS
  held = data._splits["train"].values["caption"]
  assert held.dtype == np.int32 and held.shape == (8, 7) and held.min() == -1
  if kind == "csv":
    np.testing.assert_array_equal(data.display_images("train", 8), images[..., 0])
  else:
    np.testing.assert_array_equal(
      joined(take(data.eval_dataset("test", 3), 1), "x")[:, 0], [8, 9, 10]
    )
  # Training batches are the same captions, shuffled.
  batch = take(data.train_dataset(8, seed=3), 1)[0]["caption"]
  assert sorted(text.text.decode_numpy(batch)) == sorted(TRAIN_READ)


def test_text_options_set_the_positions_and_the_vocabulary_size(tmp_path):
  """max_tokens=5: four words and the end; vocabulary_size=5: the three most frequent
  training words (the others read as [UNK])."""
  train = ["the the cat", "the cat dog", "the cat", "a dog bird"]
  caption_folder(tmp_path, "jsonl", train, ["a cat", "the bird"], max_tokens=5, vocabulary_size=5)
  data = FilesDataSet(str(tmp_path))
  text = data.modalities[-1].text
  assert text.shape == (5, 5) and text.words == ("the", "cat", "dog")
  assert captions_of(data, "train", 4)[0][3] == "[UNK] dog [UNK]"
  assert captions_of(data, "test", 2)[0] == ["[UNK] cat", "the [UNK]"]


def test_captions_cut_to_max_tokens_are_counted_over_the_splits_and_said_once(tmp_path, capsys):
  caption_folder(
    tmp_path, "jsonl", test=TEST_CAPTIONS + ["one two three four five a"], max_tokens=5
  )
  capsys.readouterr()
  data = FilesDataSet(str(tmp_path))
  err = capsys.readouterr().err
  lines = [line for line in err.splitlines() if "cut" in line]
  assert lines == [
    "warning: files: text 'caption': captions of more than 4 words are cut to their first 4 "
    "(train 1 of 8, test 1 of 4; the longest has 6 words): max_tokens=5, as given, its end of "
    "sentence included"
  ], err
  assert captions_of(data, "train", 8)[0][4] == "the cat sat on"
  assert captions_of(data, "test", 4)[0][3] == "[UNK] [UNK] [UNK] [UNK]"
  FilesDataSet(str(tmp_path))  # made again: not said again
  assert "cut" not in capsys.readouterr().err


def test_the_default_max_tokens_is_at_most_512_and_said(tmp_path, capsys):
  long = " ".join(["cat"] * 600)
  caption_folder(tmp_path, "jsonl", train=TRAIN_CAPTIONS[:3] + [long])
  capsys.readouterr()
  data = FilesDataSet(str(tmp_path))
  assert data.modalities[-1].shape[0] == 512
  err = capsys.readouterr().err
  assert (
    "captions of more than 511 words are cut to their first 511 (train 1 of 4; the longest has "
    "600 words): max_tokens=512, the most it may be; the longest training caption's words and "
    "its end would need 601"
  ) in err, err


def test_missing_captions_are_counted_refused_then_dropped(tmp_path, capsys):
  """An empty cell, whitespace, a JSON null and an absent key are missing captions; the
  vocabulary is then built from the captions of the examples kept."""
  caption_folder(tmp_path, "csv", train=TRAIN_CAPTIONS[:7] + [""], test=["", " ", "a cat"])
  one_line_error(
    lambda: FilesDataSet(str(tmp_path)),
    "train: 1 lack 'caption' (of 8); test: 2 lack 'caption' (of 3)",
    "missing=drop",
  )
  data = FilesDataSet(str(tmp_path), missing="drop")
  assert (data.num_examples("train"), data.num_examples("test")) == (7, 1)
  assert captions_of(data, "test", 1)[0] == ["a cat"]
  assert "bird sings" not in captions_of(data, "train", 7)[0]

  records = [{"x": 0.0, "caption": "a cat"}, {"x": 1.0, "caption": None}, {"x": 2.0}]
  records += [{"x": 3.0, "caption": "the sings"}, {"x": 4.0, "caption": "a dog"}]
  write_jsonl(tmp_path / "t.jsonl", records)
  write_spec(
    tmp_path,
    [{"name": "x", "kind": "vector", "columns": ["x"]}, CAPTION],
    splits={"train": "t.jsonl"},
  )
  one_line_error(lambda: FilesDataSet(str(tmp_path)), "train: 2 lack 'caption' (of 5)")
  data = FilesDataSet(str(tmp_path), missing="drop")
  assert set(data.modalities[-1].text.words) == {"a", "cat", "the", "sings", "dog"}


def test_the_vocabulary_is_that_of_the_first_num_train_captions(tmp_path):
  caption_folder(tmp_path, "jsonl")
  data = FilesDataSet(str(tmp_path), num_train=2)
  assert set(data.modalities[-1].text.words) == {"a", "red", "cat", "the", "blue", "dog"}
  assert data.modalities[-1].shape == (4, 8)
  assert captions_of(data, "test", 3)[0] == ["a red dog", "the [UNK] cat", "blue [UNK]"]


def test_an_npz_str_array_of_captions_reads_as_own_data_sets_does(tmp_path):
  """A fixed-width str array of an .npz (an empty string is missing); the same modality,
  batches and fingerprint as OwnDataSet given the captions."""
  x = np.arange(8, dtype=np.float32)[:, None]
  np.savez(tmp_path / "d.npz", x=x, caption=np.array(TRAIN_CAPTIONS))
  write_spec(
    tmp_path,
    [{"name": "x", "kind": "vector", "column": "x"}, CAPTION],
    splits={"train": "d.npz"},
  )
  data = FilesDataSet(str(tmp_path))
  same = OwnDataSet({"x": "vector", "caption": "text"}, train={"x": x, "caption": TRAIN_CAPTIONS})
  assert data.modalities == same.modalities and data.fingerprint() == same.fingerprint()
  assert captions_of(data, "train", 8)[0] == TRAIN_READ


def test_the_fingerprint_follows_the_training_captions(tmp_path):
  caption_folder(tmp_path, "jsonl")
  before = FilesDataSet(str(tmp_path)).fingerprint()
  caption_folder(
    tmp_path, "jsonl", train=TRAIN_CAPTIONS[:5] + ["red and green"] + TRAIN_CAPTIONS[6:]
  )
  after = FilesDataSet(str(tmp_path)).fingerprint()
  assert after != before
  caption_folder(
    tmp_path, "jsonl", train=TRAIN_CAPTIONS[:5] + ["Red, and GREEN!"] + TRAIN_CAPTIONS[6:]
  )
  assert FilesDataSet(str(tmp_path)).fingerprint() == after  # the same words
  caption_folder(
    tmp_path,
    "jsonl",
    train=TRAIN_CAPTIONS[:5] + ["red and green"] + TRAIN_CAPTIONS[6:],
    test=["a cat"],
  )
  assert FilesDataSet(str(tmp_path)).fingerprint() == after  # a test caption: not training data


def test_streamed_images_with_captions_give_what_memory_gives(tmp_path):
  caption_folder(tmp_path, "csv")
  memory = FilesDataSet(str(tmp_path), in_memory="yes")
  streamed = FilesDataSet(str(tmp_path), in_memory="no")
  assert memory.fingerprint() == streamed.fingerprint()
  assert memory.modalities == streamed.modalities
  for a, b in zip(
    take(memory.train_dataset(4, seed=2), 3), take(streamed.train_dataset(4, seed=2), 3)
  ):
    for key in ("image", "caption"):
      np.testing.assert_array_equal(a[key], b[key])
  for key in ("image", "caption"):
    np.testing.assert_array_equal(
      joined(take(memory.eval_dataset("test", 2), 2), key),
      joined(take(streamed.eval_dataset("test", 2), 2), key),
    )


def test_jmvae_kl_trains_on_images_and_captions_from_files(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  caption_folder(tmp_path, "csv")
  data = FilesDataSet(str(tmp_path))
  model = jmvae_tf.make_model("jmvae_kl", data, architecture_options={"hidden": "32"}, latent_dim=2)
  result = jmvae_tf.train(model, data, epochs=2, batch_size=4, warmup_epochs=0, verbose=0)
  assert int(model.optimizer.iterations.numpy()) == 4
  assert np.isfinite(result.history["loss"]).all() and "nll_caption" in result.history
  batch = next(iter(data.eval_dataset("test", 3)))
  generated = model.generated_mean(batch, "caption", given=["image"])
  assert generated.shape == (3, 7, data.modalities[-1].shape[1])
  assert len(data.modalities[-1].text.decode_numpy(generated)) == 3


# --- a text column's bad input: one line naming the file and line ---------------------------


def _caption_cell(root, row, value, split="train"):
  rows = list(csv.reader(open(root / f"{split}.csv")))
  rows[row + 1][1] = value
  write_csv(root / f"{split}.csv", rows[0], rows[1:])


def _caption_spec(root, **changes):
  spec = json.loads((root / "dataset.json").read_text())
  spec["modalities"][1].update(changes)
  _spec_with(root, modalities=spec["modalities"])


def text_case_a_caption_of_punctuation(root):
  _caption_cell(root, 5, "...")
  return [
    f"{root / 'train.csv'}: line 7, column 'caption': the caption '...' has no word once "
    "lower-cased and stripped of punctuation"
  ]


def text_case_a_caption_of_spaces_and_a_bang(root):
  _caption_cell(root, 1, "  !", split="test")
  return [f"{root / 'test.csv'}: line 3, column 'caption': the caption '  !' has no word"]


def text_case_a_test_caption_of_unknown_words(root):
  _caption_cell(root, 2, "Zebras, giraffes!", split="test")
  return [
    f"{root / 'test.csv'}: line 4, column 'caption': the caption 'Zebras, giraffes!' has only "
    "words the vocabulary does not have (the training captions' words)"
  ]


def text_case_a_test_caption_of_unknown_words_after_a_drop(root):
  """The line is the file's, not the row's among the examples kept."""
  _caption_cell(root, 0, "", split="test")
  _caption_cell(root, 2, "zebras", split="test")
  return [f"{root / 'test.csv'}: line 4, column 'caption': the caption 'zebras' has only words"]


def text_case_bytes_that_are_not_utf8_in_a_csv(root):
  lines = (root / "train.csv").read_bytes().split(b"\n")
  lines[3] = lines[3].replace(b"small", b"sm\xe4ll")
  (root / "train.csv").write_bytes(b"\n".join(lines))
  return [
    f"{root / 'train.csv'}: line 4 is not UTF-8 text (byte 0xe4 at its byte 15: invalid "
    "continuation byte); save the file as UTF-8"
  ]


def text_case_bytes_that_are_not_utf8_in_a_jsonl(root):
  write_jsonl(root / "more.jsonl", [{"z": "fine"}] * 8)
  lines = (root / "more.jsonl").read_bytes().split(b"\n")
  lines[5] = b'{"z": "\xff"}'
  (root / "more.jsonl").write_bytes(b"\n".join(lines))
  _spec_with(root, splits={"train": ["train.csv", "more.jsonl"], "test": "test.csv"})
  return [f"{root / 'more.jsonl'}: line 6 is not UTF-8 text (byte 0xff"]


def text_case_a_number_as_a_caption(root):
  write_jsonl(root / "more.jsonl", [{"words": "a cat"}] * 4 + [{"words": 7}] + [{"words": "a"}] * 3)
  write_jsonl(root / "more_test.jsonl", [{"words": "a cat"}] * 3)
  _spec_with(
    root, splits={"train": ["train.csv", "more.jsonl"], "test": ["test.csv", "more_test.jsonl"]}
  )
  _modalities_plus(root, {"name": "words", "kind": "text", "column": "words"})
  return [f"{root / 'more.jsonl'}: line 5, column 'words': a caption is text, got 7"]


def text_case_max_tokens_1(root):
  _caption_spec(root, max_tokens=1)
  return [
    f"{root / 'dataset.json'} modality 'caption': max_tokens must be a whole number in "
    "[2, 512], got 1"
  ]


def text_case_max_tokens_513(root):
  _caption_spec(root, max_tokens=513)
  return [f"{root / 'dataset.json'} modality 'caption': max_tokens must be", "got 513"]


def text_case_max_tokens_not_whole(root):
  _caption_spec(root, max_tokens=7.5)
  return [f"{root / 'dataset.json'} modality 'caption': max_tokens", "got 7.5"]


def text_case_max_tokens_as_text(root):
  _caption_spec(root, max_tokens="8")
  return [f"{root / 'dataset.json'} modality 'caption': max_tokens", "got '8'"]


def text_case_vocabulary_size_2(root):
  _caption_spec(root, vocabulary_size=2)
  return [
    f"{root / 'dataset.json'} modality 'caption': vocabulary_size must be a whole number in "
    "[3, 1000000], got 2"
  ]


def text_case_vocabulary_size_true(root):
  _caption_spec(root, vocabulary_size=True)
  return [f"{root / 'dataset.json'} modality 'caption': vocabulary_size", "got True"]


def text_case_another_likelihood(root):
  _caption_spec(root, likelihood="categorical")
  return [
    f"{root / 'dataset.json'} modality 'caption': likelihood 'categorical' for a text; choose "
    "from ['tokens']"
  ]


def text_case_an_unknown_key(root):
  _caption_spec(root, lowercase=False)
  return [f"{root / 'dataset.json'} modality 'caption': unknown key 'lowercase' for a text"]


def text_case_columns(root):
  spec = json.loads((root / "dataset.json").read_text())
  del spec["modalities"][1]["column"]
  spec["modalities"][1]["columns"] = ["caption"]
  _spec_with(root, modalities=spec["modalities"])
  return [
    f"{root / 'dataset.json'} modality 'caption': unknown key 'columns' for a text (it takes "
    "['column', 'kind', 'likelihood', 'max_tokens', 'name', 'present', 'vocabulary_size'])"
  ]


def text_case_an_npz_object_array(root):
  np.savez(root / "more.npz", words=np.array(["a cat"] * 8, dtype=object))
  _spec_with(root, splits={"train": ["train.csv", "more.npz"], "test": "test.csv"})
  _modalities_plus(root, {"name": "words", "kind": "text", "column": "words"})
  return [
    f"{root / 'more.npz'}: array 'words' holds Python objects, which are not read (no pickles)",
    "np.array(captions, dtype=str)",
  ]


TEXT_BAD_INPUTS = {
  name[10:]: case for name, case in list(globals().items()) if name.startswith("text_case_")
}


@pytest.mark.parametrize("case", sorted(TEXT_BAD_INPUTS))
def test_a_text_columns_bad_input_is_one_line_naming_the_file_and_line(tmp_path, case):
  caption_folder(tmp_path, "csv")
  words = TEXT_BAD_INPUTS[case](tmp_path)
  one_line_error(lambda: FilesDataSet(str(tmp_path), missing="drop"), *words)
