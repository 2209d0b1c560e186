"""Tests of the Projector embeddings (jmvae_tf.inspection.projector, runners.embed).

The files must parse by the Projector's rules and a real TensorBoard, started
here on 127.0.0.1, must serve them back through the projector plugin's HTTP
endpoints, as the browser UI reads them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from model_configs import mnist_config
from tensorboard.plugins import projector as tb_projector
from tiny_runs import read_only_dir, run_module, train_tiny, write_fake_mnist

from jmvae_tf.inspection import projector
from jmvae_tf.models import config as config_lib
from jmvae_tf.training import run_dir
from pipelines import mnist

BIN = Path(sys.executable).parent
NUM_TEST = 30
LATENT = 4


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory) -> Path:
  """A small MNIST-format directory (random digits) so these tests never skip."""
  return write_fake_mnist(
    tmp_path_factory.mktemp("mnist"), num_train=20, num_test=NUM_TEST + 5, seed=3
  )


def run_embed(model_dir, data_dir, *args):
  """`python -m runners.embed` on `model_dir` and `data_dir` with more flags."""
  return run_module(
    "runners.embed", f"--model_dir={model_dir}", f"--data_dir={data_dir}", *args, timeout=240
  )


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, fake_mnist):
  """A tiny JMVAE (iterative sampling) embedded by the runner: (model_dir, output_dir)."""
  model_dir = tmp_path_factory.mktemp("jmvae")
  train_tiny(model_dir, "jmvae")
  proc = run_embed(
    model_dir, fake_mnist, f"--num_examples={NUM_TEST}", "--iterations=2", "--batch_size=16"
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return model_dir, model_dir / "projector"


def test_projector_files_parse(embedded, fake_mnist):
  model_dir, output_dir = embedded
  config = text_format.Parse(
    (output_dir / "projector_config.pbtxt").read_text(), tb_projector.ProjectorConfig()
  )
  names = ["z_joint", "z_from_image", "z_from_label"]
  keys = projector.tensor_names(names)
  assert [e.tensor_name for e in config.embeddings] == [keys[n] for n in names]
  # The Projector opens on the first tensor name in sorted order: the joint embedding.
  assert sorted(keys.values())[0] == keys["z_joint"]
  reader = tf.train.load_checkpoint(str(output_dir))
  shapes = reader.get_variable_to_shape_map()
  for embedding in config.embeddings:
    assert embedding.tensor_name == embedding.tensor_name.split(":")[0]
    assert shapes[embedding.tensor_name] == [NUM_TEST, LATENT]
    assert embedding.metadata_path == "metadata.tsv" and embedding.sprite.image_path == "sprite.png"
    assert list(embedding.sprite.single_image_dim) == [28, 28]
  # The checkpoint state file points inside the output directory (relative), so it can be moved.
  assert tf.train.latest_checkpoint(str(output_dir)).startswith(str(output_dir))
  assert "/" not in (output_dir / "checkpoint").read_text().split('"')[1]

  labels = mnist.load_idx_dir(fake_mnist).test_labels[:NUM_TEST]
  rows = (output_dir / "metadata.tsv").read_text().splitlines()
  assert rows == [str(l) for l in labels]  # one column: no header line

  sprite = tf.io.decode_png(tf.io.read_file(str(output_dir / "sprite.png"))).numpy()
  assert sprite.shape == (6 * 28, 6 * 28, 1)  # ceil(sqrt(30)) = 6 digits a side
  images = mnist.load_idx_dir(fake_mnist).test_images[:NUM_TEST]
  np.testing.assert_array_equal(sprite[28:56, 4 * 28 : 5 * 28, 0], images[6 + 4])  # row-major
  assert not sprite[5 * 28 :, :, 0].any()  # padding after the last digit

  # The joint embedding is the mean of q(z|x,w) on the binarised test set (as training evaluates it).
  model = run_dir.load(str(model_dir))
  batch = next(iter(mnist.eval_dataset(images, labels, NUM_TEST, seed=0)))
  np.testing.assert_allclose(
    reader.get_tensor(keys["z_joint"]),
    model.joint_posterior_layers(batch, training=False)[0][0],
    rtol=1e-5,
    atol=1e-5,
  )


@pytest.mark.parametrize(
  "name,expected",
  [
    ("jmvae", {"z_joint", "z_from_image", "z_from_label"}),
    ("jmvae_kl", {"z_joint", "z_from_image", "z_from_label"}),
    ("hierarchical_jmvae", {"z_joint", "z_from_image", "z_from_label"}),
    ("cvae", {"z_joint"}),
    ("cmma", {"z_joint", "z_from_label"}),
  ],
)
def test_embeddings_of_every_model(name, expected):
  model = config_lib.build_model(mnist_config(name, latent_dim=LATENT))
  rng = np.random.default_rng(0)
  batches = [
    {
      "image": tf.constant((rng.random((n, 28, 28, 1)) < 0.5).astype(np.float32)),
      "label": tf.constant(np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]),
    }
    for n in (4, 3)
  ]
  means = projector.latent_means(model, batches, iterations=1)
  assert set(means) == expected
  for value in means.values():
    assert value.shape == (7, LATENT) and value.dtype == np.float32
  joined = {k: tf.concat([b[k] for b in batches], 0) for k in batches[0]}
  np.testing.assert_allclose(
    means["z_joint"],
    model.joint_posterior_layers(joined, training=False)[0][0],
    rtol=1e-5,
    atol=1e-5,
  )
  if name == "jmvae_kl":
    np.testing.assert_allclose(
      means["z_from_label"],
      model.posterior({"label": joined["label"]}, ["label"])[0],
      rtol=1e-5,
      atol=1e-5,
    )
  if name == "cmma":
    np.testing.assert_allclose(
      means["z_from_label"], model.prior({"label": joined["label"]})[0], rtol=1e-5, atol=1e-5
    )
  again = projector.latent_means(model, batches, iterations=1)
  for key in means:
    np.testing.assert_array_equal(again[key], means[key])


def test_sprite_rules(tmp_path):
  images = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2)
  grid = projector.sprite_grid(images)
  assert grid.shape == (6, 6)
  np.testing.assert_array_equal(grid[0:2, 4:6], images[2])
  np.testing.assert_array_equal(grid[2:4, 0:2], images[3])
  assert projector.sprite_grid(np.zeros((10000, 28, 28), np.uint8)).shape == (2800, 2800)
  too_many = np.broadcast_to(np.zeros((1, 28, 28), np.uint8), (293 * 293, 28, 28))
  with pytest.raises(ValueError, match="8192"):
    projector.sprite_grid(too_many)
  with pytest.raises(ValueError, match="match"):
    projector.write_projector(
      str(tmp_path / "p"),
      {"z": np.zeros((3, 2), np.float32)},
      {"label": [1, 2]},
      np.zeros((2, 28, 28), np.uint8),
    )
  assert not (tmp_path / "p").exists()


def test_embed_runner_refuses_an_unwritable_output_dir(embedded, fake_mnist, tmp_path):
  model_dir, _ = embedded
  output_dir = read_only_dir(tmp_path) / "projector"
  proc = run_embed(model_dir, fake_mnist, f"--output_dir={output_dir}")
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert f"--output_dir={output_dir} cannot be written" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_embed_runner_refuses_a_sprite_too_large(embedded, fake_mnist, tmp_path):
  model_dir, _ = embedded
  proc = run_embed(model_dir, fake_mnist, "--num_examples=90000", f"--output_dir={tmp_path / 'o'}")
  assert proc.returncode == 2 and "8192" in proc.stderr
  assert not (tmp_path / "o").exists()


def fetch(url: str) -> bytes:
  with urllib.request.urlopen(url, timeout=10) as response:
    return response.read()


def poll(url: str, ready, proc: subprocess.Popen, timeout: float = 90.0):
  """GETs `url` until ready(body) holds; fails if the server dies or time runs out."""
  deadline = time.monotonic() + timeout
  last = None
  while time.monotonic() < deadline:
    if proc.poll() is not None:
      pytest.fail(f"tensorboard exited with {proc.returncode}")
    try:
      body = fetch(url)
      if ready(body):
        return body
      last = body[:300]
    except (urllib.error.URLError, ConnectionError, OSError) as e:
      last = e
    time.sleep(0.5)
  pytest.fail(f"{url} not ready after {timeout}s (last: {last!r})")


def serving_port(log_path: Path, proc: subprocess.Popen, timeout: float = 90.0) -> int:
  """The port TensorBoard chose (`--port=0`), from the line it prints when it serves. Chosen
  by the server itself, so no other test process can take it between choosing and binding."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    found = re.search(r"TensorBoard \S+ at http://127\.0\.0\.1:(\d+)/", log_path.read_text())
    if found:
      return int(found.group(1))
    if proc.poll() is not None:
      pytest.fail(f"tensorboard exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
    time.sleep(0.2)
  pytest.fail(
    f"tensorboard printed no serving line after {timeout}s: {log_path.read_text()[-2000:]}"
  )


def test_tensorboard_serves_the_projector(embedded, tmp_path):
  _, output_dir = embedded
  log = open(tmp_path / "tensorboard.log", "w")
  proc = subprocess.Popen(
    [
      str(BIN / "tensorboard"),
      f"--logdir={output_dir}",
      "--host=127.0.0.1",
      "--port=0",
      "--load_fast=false",
    ],
    stdout=log,
    stderr=subprocess.STDOUT,
    cwd=tmp_path,
    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
  )
  try:
    port = serving_port(tmp_path / "tensorboard.log", proc)
    base = f"http://127.0.0.1:{port}/data/plugin/projector"
    runs = json.loads(poll(f"{base}/runs", lambda b: b"." in b, proc))
    assert runs == ["."]
    # What makes the UI show the PROJECTOR tab.
    poll(
      f"http://127.0.0.1:{port}/data/plugins_listing",
      lambda b: json.loads(b).get("projector", {}).get("enabled") is True,
      proc,
    )
    info = json.loads(fetch(f"{base}/info?run=."))
    embeddings = {e["tensorName"]: e for e in info["embeddings"]}
    keys = projector.tensor_names(["z_joint", "z_from_image", "z_from_label"])
    assert set(embeddings) == set(keys.values())
    # What the UI selects first (sorted by name once metadata and shapes tie): the joint one.
    assert sorted(embeddings)[0] == keys["z_joint"]
    reader = tf.train.load_checkpoint(str(output_dir))
    for name, embedding in embeddings.items():
      assert [int(d) for d in embedding["tensorShape"]] == [NUM_TEST, LATENT]
      assert embedding["metadataPath"] == "metadata.tsv"
      assert embedding["sprite"]["imagePath"] == "sprite.png"
      query = urllib.parse.urlencode({"run": ".", "name": name})
      tensor = np.frombuffer(fetch(f"{base}/tensor?{query}"), np.float32).reshape(NUM_TEST, LATENT)
      np.testing.assert_array_equal(tensor, reader.get_tensor(name))
      metadata = fetch(f"{base}/metadata?{query}").decode()
      assert metadata == (output_dir / "metadata.tsv").read_text()
      assert fetch(f"{base}/sprite_image?{query}") == (output_dir / "sprite.png").read_bytes()
  finally:
    proc.terminate()
    try:
      proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait(timeout=15)
    log.close()


@pytest.mark.parametrize("name", ["jmvae_kl", "jmvae"])
def test_three_modalities_embed_from_every_subset(name):
  """An embedding per set of modalities z can be inferred from: the joint one, each single
  modality and each pair; z_from_a_b is the posterior mean given a and b."""
  from jmvae_tf.core.modalities import Modality

  mods = (
    Modality("a", "bernoulli", (6,), "vector"),
    Modality("b", "bernoulli", (4,), "vector"),
    Modality("label", "categorical", (3,)),
  )
  model = config_lib.build_model(
    config_lib.ModelConfig.make(name, mods, "mnist_mlp", "toy", latent_dim=LATENT)
  )
  rng = np.random.default_rng(1)
  batch = {
    "a": tf.constant((rng.random((5, 6)) < 0.5).astype(np.float32)),
    "b": tf.constant((rng.random((5, 4)) < 0.5).astype(np.float32)),
    "label": tf.one_hot(rng.integers(0, 3, 5), 3),
  }
  means = projector.latent_means(model, [batch], iterations=2)
  assert set(means) == {
    "z_joint",
    "z_from_a",
    "z_from_b",
    "z_from_label",
    "z_from_a_b",
    "z_from_a_label",
    "z_from_b_label",
  }
  if name == "jmvae_kl":
    np.testing.assert_allclose(
      means["z_from_a_label"],
      model.posterior({"a": batch["a"], "label": batch["label"]}, ["a", "label"])[0],
      rtol=1e-5,
      atol=1e-6,
    )
