"""The training driver (driver.train) end to end: on a slice of the real MNIST the loss falls,
a resumed run continues exactly and the directory holds checkpoints and summaries; BatchNorm
recalibration, a new learning rate on resume and a full disk under TensorBoard."""

import dataclasses
import json

import numpy as np
import pytest
import short_runs
import tensorflow as tf
import tf_keras as keras
from model_configs import mnist_config
from stream_data import StreamData

import jmvae_tf
from jmvae_tf.core import options
from jmvae_tf.core.data import ArrayDataSet, DataError
from jmvae_tf.core.modalities import Modality
from jmvae_tf.models import config
from jmvae_tf.training import batchnorm, driver, run_dir, runtime
from pipelines import mnist

BATCH = 100


def fit(
  model_dir,
  train_slice,
  test_slice,
  model_config,
  epochs,
  input_threads=0,
  as_object=False,
  **train_kw,
):
  """driver.train of `model_config` on the slices (`as_object`: of the model built from it, as
  a notebook passes one)."""
  kw = dict(
    epochs=epochs,
    batch_size=BATCH,
    warmup_epochs=0,
    eval_every=1,
    jit_compile=False,
    steps_per_execution=5,
  )
  kw.update(train_kw)
  train_config = options.TrainConfig.make(**kw)
  stream = StreamData(
    model_config.modalities,
    lambda start: mnist.train_dataset(
      train_slice.images, train_slice.labels, BATCH, seed=0, start_epoch=start
    ),
    mnist.steps_per_epoch(train_slice.num_examples, BATCH),
    held_out=mnist.eval_dataset(test_slice.images, test_slice.labels, BATCH),
  )
  return driver.train(
    config.build_model(model_config) if as_object else model_config,
    stream,
    str(model_dir),
    train_config,
    flags_text="--model=test\n",
    verbose=0,
    input_threads=input_threads,
  )


@pytest.mark.parametrize(
  "name, extra",
  [
    ("jmvae", {}),
    ("jmvae_kl", {}),
    ("hierarchical_jmvae", {}),
    ("cvae", {}),
    ("cvae", {"target": "label", "condition": "image"}),
    ("cmma", {}),
    ("cmma", {"target": "label", "condition": "image"}),
  ],
)
def test_loss_falls_for_every_model(tmp_path, mnist_slice, name, extra):
  result = fit(
    tmp_path,
    *mnist_slice,
    mnist_config(name, **extra),
    epochs=3,
    jit_compile=(name == "jmvae_kl"),
  )
  loss, val_loss = result.history["loss"], result.history["val_loss"]
  assert loss[-1] < loss[0] and val_loss[-1] < val_loss[0], (loss, val_loss)
  assert all(np.isfinite(loss))


def test_mixed_bfloat16_trains_with_float32_heads(tmp_path, mnist_slice):
  result = fit(
    tmp_path,
    *mnist_slice,
    mnist_config("jmvae_kl"),
    epochs=2,
    precision="mixed_bfloat16",
  )
  model = result.model
  assert model.joint_encoder.branches[0].layers[-1].compute_dtype == "bfloat16"
  assert model.joint_encoder.mean_head.compute_dtype == "float32"
  assert all(v.dtype == tf.float32 for v in model.trainable_variables)  # checkpoints stay float32
  assert model.decoders["image"](tf.zeros([1, 64])).dtype == tf.float32
  assert result.history["loss"][-1] < result.history["loss"][0]
  # the global policy is restored for whatever is built next
  assert keras.mixed_precision.global_policy().name == "float32"


def _weights(model):
  return [v.numpy() for v in model.trainable_variables]


def test_resume_continues_exactly_where_an_uninterrupted_run_would_be(tmp_path, mnist_slice):
  model_config = mnist_config("jmvae_kl")
  straight = fit(tmp_path / "straight", *mnist_slice, model_config, epochs=3, warmup_epochs=2)
  first = fit(tmp_path / "resumed", *mnist_slice, model_config, epochs=2, warmup_epochs=2)
  assert first.initial_epoch == 0
  # The input threads may change on resume (the pipeline is deterministic): the same batches.
  # A model object given resumes in its directory as its config does.
  resumed = fit(
    tmp_path / "resumed",
    *mnist_slice,
    model_config,
    epochs=3,
    warmup_epochs=2,
    input_threads=1,
    as_object=True,
  )
  assert resumed.initial_epoch == 2
  assert float(resumed.model.kl_weight.numpy()) == 1.0  # warm-up state: epoch 2 of 2
  assert int(resumed.model.optimizer.iterations.numpy()) == 3 * 10
  for a, b in zip(_weights(straight.model), _weights(resumed.model)):
    np.testing.assert_allclose(a, b, atol=1e-5)
  # a finished run asked for no more epochs does nothing
  again = fit(tmp_path / "resumed", *mnist_slice, model_config, epochs=3)
  assert again.history == {}


def test_model_dir_contents_and_summaries(tmp_path, mnist_slice):
  fit(tmp_path, *mnist_slice, mnist_config("jmvae"), epochs=2, warmup_epochs=2)
  assert config.ModelConfig.from_json((tmp_path / run_dir.RUN_FILE).read_text()).model == "jmvae"
  assert (tmp_path / run_dir.FLAGS_FILE).read_text() == "--model=test\n"
  assert run_dir.find_checkpoint(str(tmp_path)).endswith("ckpt-2")
  tags = {}
  for event_file in tf.io.gfile.glob(str(tmp_path / "logs" / "train" / "events.*")):
    for event in tf.compat.v1.train.summary_iterator(event_file):
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(event.step)
  for tag in [
    "epoch_loss",
    "epoch_nll_image",
    "epoch_nll_label",
    "epoch_kl_prior",
    "epoch_kl_weight",  # from train_step via Keras; Summaries no longer repeats it
    "learning_rate",
    "examples_per_second",
    "latent_mean",
  ]:
    assert tag in tags, sorted(tags)
  restored = run_dir.load(str(tmp_path))
  assert restored.latent_dim == 64


def _face_batches(steps_per_epoch):
  """train_dataset_fn for 16x16 faces with 40 attributes: batch `step` is a function of
  the global step alone, so a run starting at any epoch reads what it would have read."""

  def make(step):
    seed = tf.stack([tf.constant(11, tf.int64), step])
    return {
      "image": tf.random.stateless_uniform([8, 16, 16, 3], seed, -1.0, 1.0),
      "attributes": tf.where(tf.random.stateless_uniform([8, 40], seed + 1) < 0.5, -1.0, 1.0),
    }

  return lambda start_epoch: tf.data.Dataset.range(start_epoch * steps_per_epoch, 10**6).map(make)


def test_recalibrated_run_learns_the_same_weights_and_saves_averaged_statistics(tmp_path):
  """--recalibrate_batchnorm changes no weight; the last checkpoint holds BatchNorm
  statistics that recalibrate_batchnorm gives on the last epoch's first batches, not
  Keras' moving averages."""
  from jmvae_tf.core.likelihoods import GAUSSIAN_FIXED
  from jmvae_tf.core.modalities import Modality

  model_config = config.ModelConfig.make(
    "jmvae_kl",
    modalities=(
      Modality("image", GAUSSIAN_FIXED, (16, 16, 3), "image"),
      Modality("attributes", GAUSSIAN_FIXED, (40,), "vector"),
    ),
    architecture="celeba_conv",
    dataset="celeb_a",
    latent_dim=4,
  )
  steps, batches = 3, _face_batches(3)
  models = {}
  for k in (0, 2):
    train_config = options.TrainConfig.make(
      epochs=2, batch_size=8, warmup_epochs=1, steps_per_execution=1, recalibrate_batchnorm=k
    )
    model_dir = str(tmp_path / f"recalibrate{k}")
    faces = StreamData(model_config.modalities, batches, steps, architecture="celeba_conv")
    driver.train(model_config, faces, model_dir, train_config, verbose=0)
    models[k] = run_dir.load(model_dir)  # what the last checkpoint holds
  plain, recalibrated = models[0], models[2]
  for a, b in zip(plain.trainable_variables, recalibrated.trainable_variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)
  moving = lambda m: [v.numpy() for v in m.non_trainable_variables if "moving" in v.name]  # noqa: E731
  before = moving(plain)
  assert len(before) == 2 * len(batchnorm.batchnorm_layers(plain)) > 0
  for v in plain.non_trainable_variables:  # so that equality below means replaced
    if "moving" in v.name:
      v.assign(tf.fill(v.shape, 1e3))
  last_epoch = list(batches(1).take(2))
  assert batchnorm.recalibrate_batchnorm(plain, last_epoch, model_config.seed) == 2
  for want, got, old in zip(moving(plain), moving(recalibrated), before):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert not np.allclose(got, old, rtol=1e-3)  # not the moving averages


def test_recalibration_on_several_replicas_is_refused_before_anything_is_written(
  tmp_path, monkeypatch
):
  """--strategy=auto picks MirroredStrategy where there are several GPUs: refused before the
  model dir is made, naming what to do instead (explicit names: test_training_runtime.py)."""
  auto = options.TrainConfig.make(epochs=1, batch_size=8, recalibrate_batchnorm=2)
  real = runtime.machine_defaults
  several_gpus = lambda jit_compile=False: dataclasses.replace(
    real(jit_compile), strategy="mirrored"
  )  # noqa: E731
  monkeypatch.setattr(runtime, "machine_defaults", several_gpus)
  model_config = mnist_config("jmvae", latent_dim=2)
  with pytest.raises(
    ValueError, match="'auto' is 'mirrored' here; train with --strategy=one_device"
  ):
    stream = StreamData(model_config.modalities, _face_batches(1), 1)
    driver.train(model_config, stream, str(tmp_path / "m"), auto, verbose=0)
  assert not (tmp_path / "m").exists()


def test_recalibration_of_a_model_without_batchnorm_is_a_warning(tmp_path, capsys):
  model_config = mnist_config("jmvae", latent_dim=2)  # MNIST MLPs
  train_config = options.TrainConfig.make(epochs=1, batch_size=50, recalibrate_batchnorm=2)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (100, 28, 28), dtype=np.uint8)
  labels = rng.integers(0, 10, 100).astype(np.uint8)
  batches = lambda start: mnist.train_dataset(images, labels, 50, 0, start)  # noqa: E731
  stream = StreamData(model_config.modalities, batches, 2)
  driver.train(model_config, stream, str(tmp_path / "m"), train_config, verbose=0)
  assert "recalibrate_batchnorm: jmvae has no BatchNorm layer; ignored" in capsys.readouterr().err


# --- the learning rate of a resumed run, and a full disk under TensorBoard ---------------------
# Tiny runs (short_runs: latent_dim 4, batches of 8, 3 steps an epoch) on random binary data.


def _checkpoint_learning_rate(prefix):
  return float(
    tf.train.load_checkpoint(prefix).get_tensor(
      "optimizer/learning_rate/.ATTRIBUTES/VARIABLE_VALUE"
    )
  )


def test_a_new_learning_rate_on_resume_is_applied_and_recorded(tmp_path):
  fit, ckpt = short_runs.fit, short_runs.ckpt
  for run in ("new_rate", "same_rate"):
    fit(tmp_path / run, epochs=2, learning_rate=1e-3, flags_text="--learning_rate=0.001\n")
  resumed = fit(
    tmp_path / "new_rate", epochs=3, learning_rate=5e-4, flags_text="--learning_rate=0.0005\n"
  )
  assert resumed.initial_epoch == 2
  # the restored optimiser runs at the new rate, not the checkpoint's
  assert resumed.model.optimizer.learning_rate.numpy() == np.float32(5e-4)
  assert _checkpoint_learning_rate(ckpt(tmp_path / "new_rate", 2)) == np.float32(1e-3)
  assert _checkpoint_learning_rate(ckpt(tmp_path / "new_rate", 3)) == np.float32(5e-4)
  same = fit(tmp_path / "same_rate", epochs=3, learning_rate=1e-3)
  changed = [
    not np.array_equal(a.numpy(), b.numpy())
    for a, b in zip(resumed.model.trainable_variables, same.model.trainable_variables)
  ]
  assert all(changed)  # epoch 3 took other steps: the rate was used
  # recorded: flags.txt and train.json describe the newest checkpoints, the history the rest
  run = tmp_path / "new_rate"
  assert (run / run_dir.FLAGS_FILE).read_text() == "--learning_rate=0.0005\n"
  assert (run / run_dir.FLAGS_HISTORY_FILE).read_text() == ("# epochs 1-2\n--learning_rate=0.001\n")
  record = json.loads((run / run_dir.TRAIN_FILE).read_text())
  assert record["start_epoch"] == 2 and record["train_config"]["learning_rate"] == 5e-4
  # another change (here of --epochs alone) moves these flags to the history in turn
  fit(run, epochs=4, learning_rate=5e-4, flags_text="--learning_rate=0.0005\n--epochs=4\n")
  assert (run / run_dir.FLAGS_HISTORY_FILE).read_text() == (
    "# epochs 1-2\n--learning_rate=0.001\n# epochs 3-3\n--learning_rate=0.0005\n"
  )
  assert json.loads((run / run_dir.TRAIN_FILE).read_text())["start_epoch"] == 3


def test_a_full_disk_while_writing_tensorboard_events_is_one_line(tmp_path, monkeypatch):
  """TensorBoard's writer fails as it does on a full tmpfs (ResourceExhaustedError from its
  WriteSummary op, message as measured there); the checkpoint of the epoch stays."""
  fit, ckpt = short_runs.fit, short_runs.ckpt
  fit(tmp_path, epochs=1)

  def disk_full(self, epoch, logs=None):
    raise tf.errors.ResourceExhaustedError(
      None, None, f"{tmp_path}/logs/train/events.out.tfevents.1.v2; No space left on device"
    )

  monkeypatch.setattr(keras.callbacks.TensorBoard, "on_epoch_end", disk_full)
  with pytest.raises(run_dir.RunDirError) as full:
    fit(tmp_path, epochs=2)
  message = str(full.value)
  assert "\n" not in message and "No space left on device" in message and "disk full" in message
  assert f"the last good checkpoint {ckpt(tmp_path, 2)} is kept" in message, message
  assert short_runs.checkpoints_on_disk(tmp_path) == ["ckpt-1", "ckpt-2"]
  assert all(run_dir.checkpoint_problem(ckpt(tmp_path, n)) is None for n in (1, 2))


# --- what train takes: a model or its config; a DataSet, arrays or a pipeline; a dir or none ---

TOY = (Modality("picture", "bernoulli", (6, 6, 1), "image"), Modality("class", "categorical", (3,)))
SETTINGS = dict(
  batch_size=20, warmup_epochs=1, steps_per_execution=1, strategy="default", eval_every=1
)


def toy_arrays(n, seed=0):
  """Pictures whose lit pixels say their class: a pair a model can learn in a few epochs."""
  rng = np.random.default_rng(seed)
  classes = rng.integers(0, 3, n)
  pictures = (rng.random((n, 6, 6, 1)) < 0.1).astype(np.float32)
  pictures[np.arange(n), 2 * classes, :, 0] = 1.0
  return {"picture": pictures, "class": np.eye(3, dtype=np.float32)[classes]}


def test_a_model_trains_in_memory_on_arrays_and_writes_nothing(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  model = config.make_model("jmvae_kl", TOY, latent_dim=4)
  result = driver.train(
    model, toy_arrays(200), validation_data=toy_arrays(60, 1), epochs=4, verbose=0, **SETTINGS
  )
  assert result.model is model and result.initial_epoch == 0
  loss, val_loss = result.history["loss"], result.history["val_loss"]
  assert loss[-1] < loss[0] and val_loss[-1] < val_loss[0], (loss, val_loss)
  assert float(model.kl_weight.numpy()) == 1.0  # the warm-up ran: epoch 2 on
  assert list(tmp_path.iterdir()) == []
  # What it learned shows both ways: the class read off the pictures beats chance.
  test = toy_arrays(60, 2)
  read = model.generated_mean({"picture": tf.constant(test["picture"])}, "class", ["picture"])
  assert np.mean(read.numpy().argmax(-1) == test["class"].argmax(-1)) > 0.6


def test_a_model_trains_on_a_tf_data_pipeline():
  model = config.make_model("jmvae", TOY, latent_dim=4)
  batches = tf.data.Dataset.from_tensor_slices(toy_arrays(100)).batch(20)
  result = driver.train(model, batches, epochs=3, verbose=0, **SETTINGS)
  assert int(model.optimizer.iterations.numpy()) == 3 * 5  # one pass of 5 batches an epoch
  assert result.history["loss"][-1] < result.history["loss"][0]


def test_make_model_and_train_give_what_the_runners_config_path_gives(tmp_path):
  """train(make_model(...)) in a model directory: the checkpoint and run.json of
  train(ModelConfig) (what runners.train calls), bit for bit."""
  data = ArrayDataSet(TOY, toy_arrays(100), test=toy_arrays(40, 1), name="toy")
  settings = options.TrainConfig.make(epochs=2, **SETTINGS)
  made = config.ModelConfig.make("jmvae_kl", TOY, "mnist_mlp", "toy", latent_dim=4)
  driver.train(made, data, str(tmp_path / "config"), settings, verbose=0)
  model = config.make_model("jmvae_kl", data, latent_dim=4)
  driver.train(model, data, str(tmp_path / "object"), settings, verbose=0)
  for name in ("run.json", "train.json"):
    assert (tmp_path / "config" / name).read_text() == (tmp_path / "object" / name).read_text()
  recorded = json.loads((tmp_path / "object" / "train.json").read_text())["train_config"]
  assert recorded["num_train"] == 100 and recorded["data_fingerprint"] == data.fingerprint()
  a, b = (
    tf.train.load_checkpoint(str(tmp_path / d / "ckpt" / "ckpt-2")) for d in ("config", "object")
  )
  keys = [k for k in a.get_variable_to_shape_map() if not k.startswith("_CHECKPOINTABLE")]
  assert len(keys) > 50
  for key in keys:
    np.testing.assert_array_equal(a.get_tensor(key), b.get_tensor(key), err_msg=key)
  loaded = jmvae_tf.load(str(tmp_path / "object"))
  for x, y in zip(loaded.trainable_variables, model.trainable_variables):
    np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_what_train_cannot_use_is_refused_before_anything_is_written(tmp_path):
  model = config.make_model("jmvae", TOY, latent_dim=2)
  other = {"picture": np.zeros((40, 5, 5, 1), np.float32), "class": np.zeros((40, 3), np.float32)}
  with pytest.raises(DataError, match=r"train\['picture'\] has shape \(40, 5, 5, 1\)"):
    driver.train(model, other, str(tmp_path / "a"), epochs=1, verbose=0)
  mnist_like = ArrayDataSet(
    (Modality("picture", "bernoulli", (5, 5, 1), "image"), TOY[1]),
    {
      "picture": np.zeros((40, 5, 5, 1), np.float32),
      "class": np.eye(3, dtype=np.float32)[[0] * 40],
    },
  )
  refusal = (
    r"^the data set 'arrays' does not give what the model reads: its 'picture' is "
    r"\{.*'shape': \[5, 5, 1\].*\}, the model's \{.*'shape': \[6, 6, 1\]"
  )
  with pytest.raises(DataError, match=refusal):
    driver.train(model, mnist_like, str(tmp_path / "b"), epochs=1, verbose=0)
  with pytest.raises(
    ValueError, match="built under Keras' 'float32' policy, not precision='mixed_bfloat16'"
  ):
    driver.train(
      model, toy_arrays(40), str(tmp_path / "c"), epochs=1, precision="mixed_bfloat16", verbose=0
    )
  with pytest.raises(
    TypeError, match="train reads a DataSet, a dict of arrays or a tf.data.Dataset"
  ):
    driver.train(model, [1, 2], epochs=1, verbose=0)

  class Unregistered(type(model)):
    pass

  stranger = Unregistered(TOY, options.ModelOptions(latent_dim=2)).initialize()
  with pytest.raises(ValueError, match="Unregistered is not a registered model"):
    driver.train(stranger, toy_arrays(40), str(tmp_path / "d"), epochs=1, verbose=0)
  with pytest.raises(
    ValueError, match="strategy='mirrored': a model given as an object trains under"
  ):
    driver.train(
      model, toy_arrays(40), str(tmp_path / "e"), epochs=1, strategy="mirrored", verbose=0
    )
  with pytest.raises(DataError, match="num_train=30, but 'arrays' has 40 training examples"):
    driver.train(
      model, toy_arrays(40), str(tmp_path / "f"), epochs=1, num_train=30, batch_size=20, verbose=0
    )
  assert not any((tmp_path / d).exists() for d in "abcdef")
  driver.train(stranger, toy_arrays(40), epochs=1, verbose=0, batch_size=20)  # in memory: fine


def test_the_data_sets_options_are_recorded_for_whatever_reads_the_run(tmp_path):
  """A data set made with options (CelebA's crop=center, say) records them, and training puts
  them in train.json, where runners.evaluate, embed, figures and edit read them back."""
  data = ArrayDataSet(TOY, toy_arrays(40), name="toy")
  data.options = ("crop=center",)
  driver.train(
    config.make_model("jmvae", data, latent_dim=2),
    data,
    str(tmp_path),
    epochs=1,
    batch_size=20,
    verbose=0,
  )
  assert jmvae_tf.load_run(str(tmp_path)).data_options == ("crop=center",)


@pytest.mark.parametrize("name", ["jmvae_kl", "jmvae"])
def test_training_on_incomplete_data_resumes_exactly_and_records_the_option(tmp_path, name):
  """A share of the labels hidden (jmvae_tf/core/missing.py): the masks are a pure function of
  the data seed, so 2 + 1 epochs end where 3 do; train.json records the option, a resume with
  another share is refused, and the run evaluates on the complete test split."""
  rng = np.random.default_rng(0)

  def arrays(n):
    return {
      "image": (rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32),
      "label": np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)],
    }

  train, test = arrays(100), arrays(20)

  def data(share="0.9"):
    return ArrayDataSet(mnist.mnist_modalities(), train, test=test, missing=f"label:{share}")

  model_config = mnist_config(name, latent_dim=8)
  kw = dict(batch_size=BATCH, warmup_epochs=0, eval_every=1, steps_per_execution=5, verbose=0)
  straight = driver.train(model_config, data(), str(tmp_path / "straight"), epochs=3, **kw)
  driver.train(model_config, data(), str(tmp_path / "resumed"), epochs=2, **kw)
  resumed = driver.train(model_config, data(), str(tmp_path / "resumed"), epochs=3, **kw)
  assert resumed.initial_epoch == 2
  for a, b in zip(_weights(straight.model), _weights(resumed.model)):
    np.testing.assert_array_equal(a, b)
  record = json.loads((tmp_path / "resumed" / run_dir.TRAIN_FILE).read_text())
  assert record["train_config"]["data_options"] == ["missing=label:0.9"]
  with pytest.raises(run_dir.RunDirError, match="data_options"):
    driver.train(model_config, data("0.5"), str(tmp_path / "resumed"), epochs=4, **kw)
  values = jmvae_tf.evaluate(resumed.model, data(), num_samples=2, with_coherence=False)["values"]
  assert set(values) >= {"image|label", "label|image"} and all(np.isfinite(list(values.values())))
