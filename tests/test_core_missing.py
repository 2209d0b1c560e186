"""jmvae_tf/core/missing.py and every data set's missing= option: the share hidden is exact and
a pure function of the data seed, the same examples every epoch, never on the held-out splits;
batches carry the masks with the absent values zeros; a resumed stream hides what an
uninterrupted one did; bad options are one line naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tiny_runs import write_fake_mnist

import jmvae_tf as jt
from jmvae_tf.core import missing
from jmvae_tf.core.data import ArrayDataSet, DataError, format_shares, parse_options, parse_shares
from jmvae_tf.core.likelihoods import CATEGORICAL, GAUSSIAN
from jmvae_tf.core.modalities import VECTOR, Modality
from pipelines import registry, synthetic_faces
from pipelines.mnist import mnist_modalities

NAMES = ("image", "label")


# --- the option --------------------------------------------------------------------------------
def test_several_modalities_repeat_the_key_on_the_command_line_and_are_recorded_so():
  options = parse_options(["missing=fashion:0.5", "missing=digit:0.25", "fashion_dir=/f"])
  assert options == {"missing": "fashion:0.5,digit:0.25", "fashion_dir": "/f"}
  with pytest.raises(DataError, match="fashion_dir is given twice"):
    parse_options(["fashion_dir=/a", "fashion_dir=/b"])
  mods = (Modality("a", GAUSSIAN, (1,), VECTOR), Modality("b", GAUSSIAN, (1,), VECTOR))
  mods += (Modality("c", GAUSSIAN, (1,), VECTOR),)
  train = {n: np.zeros((10, 1), np.float32) for n in "abc"}
  data = ArrayDataSet(mods, train, missing="b:0.5,a:0.25")
  assert data.options == ("missing=a:0.25", "missing=b:0.5")
  assert parse_options(data.options) == {"missing": "a:0.25,b:0.5"}


def test_shares_are_read_in_the_data_sets_order():
  assert parse_shares("label:0.99", NAMES, "mnist") == (("label", 0.99),)
  three = ("digit", "fashion", "label")
  shares = parse_shares(" fashion:0.5 , digit:0.25", three, "mnist_fashion")
  assert shares == (("digit", 0.25), ("fashion", 0.5))
  assert parse_shares(format_shares(shares), three, "x") == shares


@pytest.mark.parametrize(
  "text, words",
  [
    ("label:1", "must be a number in [0, 1), got '1'"),
    ("label:1.5", "got '1.5'"),
    ("label:-0.1", "got '-0.1'"),
    ("label:nan", "got 'nan'"),
    ("label:half", "got 'half'"),
    ("labl:0.5", "mnist has no modality 'labl' (it has ['image', 'label'])"),
    ("image:0.5,label:0.5", "every modality is hidden"),
    ("label", "'label' is not modality:share"),
    ("label:0.5,label:0.2", "'label' is named twice"),
  ],
)
def test_bad_shares_are_one_line_naming_what_is_wrong(text, words):
  with pytest.raises(DataError) as error:
    parse_shares(text, NAMES, "mnist")
  message = str(error.value)
  assert words in message and f"missing={text}" in message and "\n" not in message


# --- which examples ----------------------------------------------------------------------------
def test_the_share_hidden_is_exact_and_a_pure_function_of_the_seed():
  hidden = missing.hidden_examples(1000, 0.99, seed=0, name="label")
  assert hidden.dtype == bool and hidden.sum() == 990
  np.testing.assert_array_equal(hidden, missing.hidden_examples(1000, 0.99, 0, "label"))
  other_seed = missing.hidden_examples(1000, 0.5, 1, "label")
  assert other_seed.sum() == 500
  assert not np.array_equal(other_seed, missing.hidden_examples(1000, 0.5, 0, "label"))
  # Modalities are hidden independently: for every pair of names and seeds, the examples
  # lacking both are a quarter of 50,000 within 4 standard deviations (97 each).
  for seed in (0, 1, 2):
    sets = {
      n: missing.hidden_examples(50_000, 0.5, seed, n)
      for n in ("image", "label", "digit", "fashion", "caption")
    }
    names = sorted(sets)
    for i, a in enumerate(names):
      for b in names[i + 1 :]:
        both = int((sets[a] & sets[b]).sum())
        assert abs(both - 12_500) < 400, (seed, a, b, both)
  assert not missing.hidden_examples(1000, 0.0, 0, "label").any()
  assert missing.hidden_examples(3, 0.1, 0, "label").sum() == 0  # round(0.3) = 0


def test_presence_joins_the_datas_own_gaps_and_those_hidden():
  assert missing.presence(10, NAMES, (), 0) is None
  assert (
    missing.presence(10, NAMES, (), 0, {"image": np.ones(10, bool), "label": np.ones(10, bool)})
    is None
  )
  own = {"image": np.ones(10, bool), "label": np.arange(10) != 3}
  table = missing.presence(10, NAMES, (("label", 0.5),), 0, own)
  assert not table["label"][3] and table["label"].sum() <= 5 and table["image"].all()
  assert missing.describe(table).startswith("of 10 training examples: ")
  all_kept = missing.presence(10, NAMES, (("label", 0.0),), 0)
  assert all_kept is not None and all(v.all() for v in all_kept.values())  # masks, all True


# --- batches ----------------------------------------------------------------------------------
def identified(n=40, option="label:0.75"):
  """An ArrayDataSet whose "id" modality says which example each row is."""
  mods = (
    Modality("id", GAUSSIAN, (1,), VECTOR),
    Modality("label", CATEGORICAL, (4,)),
    Modality("x", GAUSSIAN, (2,), VECTOR),
  )
  rng = np.random.default_rng(0)
  train = {
    "id": np.arange(n, dtype=np.float32)[:, None],
    "label": np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)],
    "x": rng.normal(size=(n, 2)).astype(np.float32) + 5.0,
  }
  return ArrayDataSet(mods, train, test=dict(train), missing=option), train


def epochs_of(data, batch_size, seed, epochs, start_epoch=0):
  steps = data.steps_per_epoch(batch_size)
  stream = data.train_dataset(batch_size, seed, start_epoch).take(steps * epochs)
  return list(stream.as_numpy_iterator())


def test_batches_carry_each_examples_masks_and_zeros_where_it_lacks_a_value():
  data, train = identified()
  table = data.presence(seed=3)
  assert table["label"].sum() == 10 and table["x"].all()
  seen = {}
  for batch in epochs_of(data, 8, seed=3, epochs=2):
    ids = batch["id"][:, 0].astype(int)
    np.testing.assert_array_equal(batch[missing.PRESENT]["label"], table["label"][ids])
    held = batch[missing.PRESENT]["label"]
    np.testing.assert_array_equal(batch["label"][held], train["label"][ids[held]])
    assert not batch["label"][~held].any()  # absent: zeros
    np.testing.assert_array_equal(batch["x"], train["x"][ids])  # another modality untouched
    for i, h in zip(ids, held):
      assert seen.setdefault(i, h) == h  # the same examples every epoch
  assert len(seen) == 40
  held_out = next(iter(data.eval_dataset("test", 40)))
  assert missing.PRESENT not in held_out
  np.testing.assert_array_equal(held_out["label"].numpy(), train["label"])  # never hidden


def test_a_resumed_stream_hides_what_an_uninterrupted_one_did():
  data, _ = identified()
  whole = epochs_of(data, 8, seed=3, epochs=2)
  resumed = epochs_of(data, 8, seed=3, epochs=1, start_epoch=1)
  for one, other in zip(whole[5:], resumed):
    for key in ("id", "label"):
      np.testing.assert_array_equal(one[key], other[key])
    np.testing.assert_array_equal(one[missing.PRESENT]["label"], other[missing.PRESENT]["label"])


def test_without_the_option_batches_are_those_of_before():
  data, _ = identified(option=None)
  assert data.presence(0) is None and data.options == ()
  assert missing.PRESENT not in next(iter(data.train_dataset(8, 0)))


# --- every data set of the registry ------------------------------------------------------------
def one_epoch_counts(data, batch_size, seed=0):
  """{modality: examples of one epoch that lack it}, after checking zeros where absent."""
  counts = {}
  for batch in epochs_of(data, batch_size, seed, epochs=1):
    present = batch[missing.PRESENT]
    for name, held in present.items():
      counts[name] = counts.get(name, 0) + int((~held).sum())
      assert not np.any(batch[name][~held])
  return counts


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
  root = tmp_path_factory.mktemp("missing")
  digits, fashion = root / "digits", root / "fashion"
  for directory, seed in ((digits, 0), (fashion, 1)):
    directory.mkdir()
    write_fake_mnist(directory, num_train=200, num_test=100, seed=seed)
  faces = root / "faces"
  synthetic_faces.generate(faces, 30, seed=0)
  return {"digits": digits, "fashion": fashion, "faces": faces}


@pytest.mark.parametrize(
  "name, option, batch_size, expected",
  [
    ("mnist", "label:0.9", 50, {"image": 0, "label": 180}),
    ("fashion_mnist", "image:0.25", 50, {"image": 50, "label": 0}),
    ("mnist_fashion", "digit:0.5,fashion:0.5", 50, {"digit": 100, "fashion": 100, "label": 0}),
    ("celeb_a", "attributes:0.5", 9, None),
  ],
)
def test_every_data_set_hides_the_share_asked_in_training_only(
  fakes, name, option, batch_size, expected
):
  kwargs = {"mnist_fashion": {"fashion_dir": str(fakes["fashion"])}}.get(name, {})
  data_dir = fakes["faces"] if name == "celeb_a" else fakes["digits"]
  options = [f"missing={option}"] + [f"{k}={v}" for k, v in kwargs.items()]
  data = registry.make_dataset(
    name, str(data_dir), num_train=200 if name != "celeb_a" else None, options=options
  )
  assert parse_options(data.options)["missing"] == option  # recorded, read back the same
  n = data.num_examples("train")
  table = data.presence(0)
  if expected is None:  # celeb_a: 27 training faces, half of them without attributes
    expected = {"image": 0, "attributes": int(round(0.5 * n))}
  assert {k: int((~v).sum()) for k, v in table.items()} == expected
  if n % batch_size == 0:  # a whole epoch is every example once
    assert one_epoch_counts(data, batch_size) == expected
  else:
    one_epoch_counts(data, batch_size)  # zeros where absent
  held_out = next(iter(data.eval_dataset("test", 5)))
  assert missing.PRESENT not in held_out


def test_a_pipeline_of_ones_own_may_carry_the_masks():
  """A user's tf.data pipeline with batch["present"]: accepted and trained on (the loss falls);
  masks of the wrong kind are one line."""

  rng = np.random.default_rng(0)
  n = 200
  arrays = {
    "image": (rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32),
    "label": np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)],
  }
  held = {"label": np.arange(n) % 4 == 0}
  stream = tf.data.Dataset.from_tensor_slices((arrays, held)).batch(50)
  stream = stream.map(lambda values, present: missing.attach(values, present))
  data = jt.PipelineDataSet(mnist_modalities(), stream)
  model = jt.make_model("jmvae_kl", data, latent_dim=4)
  result = jt.train(model, data, epochs=4, warmup_epochs=0, verbose=0)
  assert result.history["loss"][-1] < result.history["loss"][0]
  bad = tf.data.Dataset.from_tensor_slices(
    {**arrays, missing.PRESENT: {"label": np.ones(n, np.float32)}}
  ).batch(50)
  with pytest.raises(DataError, match="'present' must be {modality: bool"):
    jt.PipelineDataSet(mnist_modalities(), bad)


def test_held_out_batches_with_masks_are_refused():
  batches = tf.data.Dataset.from_tensor_slices(
    {
      "image": np.zeros((4, 28, 28, 1), np.float32),
      "label": np.zeros((4, 10), np.float32),
      missing.PRESENT: {"label": np.ones(4, bool)},
    }
  ).batch(2)
  with pytest.raises(DataError, match="held-out examples are complete"):
    jt.PipelineDataSet(mnist_modalities(), batches, validation=batches)


def test_keep_refuses_a_modality_no_training_example_holds():
  from jmvae_tf.core.own_data import OwnDataSet

  with pytest.raises(DataError, match="no training example holds 'v'"):
    OwnDataSet(
      {"v": {"kind": "vector", "standardize": True}, "c": "class"},
      train={"v": [None, None, None], "c": ["a", "b", "a"]},
      missing="keep",
    )
