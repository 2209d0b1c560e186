"""Model directories written before the split of training.py (commit a62b151, the last one
before it) restore, evaluate and resume under today's code.

The directories are made by that commit's own code, taken from this clone's history
(`git archive`) and run from its tree in a subprocess: a JMVAE-kl run through its runner on
MNIST-format files, and a VAE-GAN (three optimisers in one checkpoint) through its library.
A clone without that history (a shallow one) skips, saying so.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tiny_runs import REPOSITORY_ROOT, run_module, write_fake_mnist

from jmvae_tf.core import options
from jmvae_tf.training import driver, run_dir
from pipelines.mnist import mnist_modalities

OLD_COMMIT = "a62b151c3687fcd9b0f6fd30ade79132b9f760d2"
TRAIN_FLAGS = (
  "--flagfile=configs/mnist_jmvae_kl.flags",
  "--latent_dim=4",
  "--num_train=64",
  "--batch_size=32",
  "--warmup_epochs=1",
  "--eval_every=1",
  "--steps_per_execution=1",
  "--verbose=0",
)


@pytest.fixture(scope="module")
def old_tree(tmp_path_factory) -> Path:
  """The project's files at OLD_COMMIT, or a skip where this clone lacks that commit."""
  archive = subprocess.run(
    ["git", "archive", "--format=tar", OLD_COMMIT],
    cwd=REPOSITORY_ROOT,
    capture_output=True,
  )
  if archive.returncode:
    pytest.skip(f"commit {OLD_COMMIT[:7]} is not in this clone's history (a shallow clone?)")
  tree = tmp_path_factory.mktemp("old_tree")
  with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
    tar.extractall(tree, filter="data")
  return tree


def run_old(tree: Path, *args: str) -> subprocess.CompletedProcess:
  """`python args` in the old tree, which its own packages come first on the path for."""
  done = subprocess.run(
    [sys.executable, *args],
    cwd=tree,
    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(tree)),
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  return done


@pytest.fixture(scope="module")
def old_mnist_run(old_tree, tmp_path_factory):
  """A JMVAE-kl model dir of one epoch, written by the old runner."""
  data = write_fake_mnist(tmp_path_factory.mktemp("mnist"), num_train=64, num_test=32)
  model_dir = tmp_path_factory.mktemp("runs") / "jmvae_kl"
  probe = run_old(old_tree, "-c", "import jmvae_tf.training as t; print(t.__file__)")
  assert probe.stdout.strip().startswith(str(old_tree))  # the old code, not today's
  run_old(
    old_tree,
    "-m",
    "runners.train",
    *TRAIN_FLAGS,
    f"--data_dir={data}",
    f"--model_dir={model_dir}",
    "--epochs=1",
  )
  return data, model_dir


def test_an_old_runs_files_read_as_todays(old_mnist_run):
  """run.json is today's config of the same flags (CVAE/CMMA-free, so no bound defaults),
  train.json today's TrainConfig, and the checkpoint is found and restores every weight."""
  _, model_dir = old_mnist_run
  run = run_dir.load_run(str(model_dir))
  assert run.config.model == "jmvae_kl" and run.config.latent_dim == 4
  assert run.config.modalities == mnist_modalities()
  assert run.checkpoint.endswith("ckpt-1")
  assert (
    run.record.train_config.fixed
    == options.TrainConfig.make(batch_size=32, warmup_epochs=1, num_train=64).fixed
  )
  model = run.restore()
  reader = tf.train.load_checkpoint(run.checkpoint)
  saved = {
    name: reader.get_tensor(name)
    for name in reader.get_variable_to_shape_map()
    if name.startswith("model/") and "OPTIMIZER_SLOT" not in name
  }
  assert len(saved) == len(model.variables)  # every variable of the model is in it, and read
  kernel = "model/joint_encoder/mean_head/kernel/.ATTRIBUTES/VARIABLE_VALUE"
  np.testing.assert_array_equal(model.joint_encoder.mean_head.kernel.numpy(), saved[kernel])


def test_an_old_run_evaluates_and_resumes_with_todays_runners(old_mnist_run, tmp_path):
  """runners.evaluate reads it; runners.train with the same flags resumes it at epoch 2,
  accepting its train.json (no setting is refused) and keeping its checkpoint."""
  data, model_dir = old_mnist_run
  evaluated = run_module(
    "runners.evaluate",
    f"--model_dir={model_dir}",
    f"--data_dir={data}",
    f"--output_dir={tmp_path}",
    "--num_test=32",
    "--iterations=2",
    "--num_samples=2",
    "--noprogress",
  )
  assert evaluated.returncode == 0, evaluated.stderr[-2000:]
  values = json.loads((tmp_path / "evaluation.json").read_text())["values"]
  assert set(values) == {"image|label", "label|image", "image|image,label", "label|image,label"}
  assert all(np.isfinite(v) for v in values.values())
  first = (model_dir / "ckpt" / "ckpt-1.data-00000-of-00001").read_bytes()
  resumed = run_module(
    "runners.train",
    *TRAIN_FLAGS,
    f"--data_dir={data}",
    f"--model_dir={model_dir}",
    "--epochs=2",
    "--verbose=2",
  )
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert "Resuming from" in resumed.stdout and "ckpt-1 at epoch 2" in resumed.stdout
  assert run_dir.find_checkpoint(str(model_dir)).endswith("ckpt-2")
  assert (model_dir / "ckpt" / "ckpt-1.data-00000-of-00001").read_bytes() == first


OLD_GAN_SCRIPT = textwrap.dedent(
  """
  import sys
  import numpy as np
  import tensorflow as tf
  from jmvae_tf import config, training
  from jmvae_tf.modalities import GAUSSIAN_FIXED, Modality

  modalities = (Modality("image", GAUSSIAN_FIXED, (16, 16, 3)),
                Modality("attributes", GAUSSIAN_FIXED, (5,)))
  model_config = config.ModelConfig.make(
    "jmvae_kl_gan", modalities=modalities, architecture="celeba_conv", dataset="celeb_a",
    latent_dim=4)
  train_config = config.TrainConfig(
    epochs=1, batch_size=4, warmup_epochs=0, steps_per_execution=1, strategy="default")
  rng = np.random.default_rng(0)
  data = {m.name: rng.uniform(-1, 1, (8,) + m.shape).astype(np.float32) for m in modalities}
  training.train(
    model_config, train_config, sys.argv[1],
    lambda start: tf.data.Dataset.from_tensor_slices(data).repeat().batch(4, drop_remainder=True),
    steps_per_epoch=2, verbose=0)
  """
)


def test_an_old_vae_gan_restores_its_three_optimisers_and_resumes(old_tree, tmp_path):
  """The old VAE-GAN's checkpoint (model, its two extra Adams, the compiled one) restores
  under today's train(): the resumed run starts at epoch 2 from those optimisers' state."""
  model_dir = tmp_path / "gan"
  run_old(old_tree, "-c", OLD_GAN_SCRIPT, str(model_dir))
  run = run_dir.load_run(str(model_dir))
  assert run.config.model == "jmvae_kl_gan"
  reader = tf.train.load_checkpoint(run.checkpoint)
  steps = {
    name: int(reader.get_tensor(name))
    for name in reader.get_variable_to_shape_map()
    if name.endswith("iter/.ATTRIBUTES/VARIABLE_VALUE")
  }
  assert sorted(steps.values()) == [2, 2, 2], steps  # the three optimisers' step counters
  rng = np.random.default_rng(0)
  data = {
    m.name: rng.uniform(-1, 1, (8,) + m.shape).astype(np.float32) for m in run.config.modalities
  }
  result = driver.train(  # the arrays as an ArrayDataSet: 2 steps of 4 an epoch
    run.config,
    data,
    str(model_dir),
    options.TrainConfig.make(
      epochs=2, batch_size=4, warmup_epochs=0, steps_per_execution=1, strategy="default"
    ),
    verbose=0,
  )
  assert result.initial_epoch == 1
  model = result.model
  iterations = [int(o.iterations.numpy()) for o, _ in model.optimizer_groups()]
  assert iterations == [4, 4, 4]  # 2 restored + 2 trained, each optimiser
