"""Test helper: a tiny JMVAE (latent_dim 4, batches of 8, 3 steps an epoch) on random binary
data, trained with driver.train as runners.train trains it, and what the tests of the model
directory, the callbacks and the driver look at in its directory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from model_configs import mnist_config
from stream_data import StreamData

from jmvae_tf.core import options
from jmvae_tf.training import driver, run_dir

BATCH, STEPS = 8, 3
MODEL = mnist_config("jmvae", latent_dim=4)


def data(epochs, poison=None):
  """epochs * STEPS batches in a fixed order; `poison` = (epoch, step), both 1-based: that
  batch's images are infinite, so its loss is not finite."""
  rng = np.random.default_rng(0)
  n = epochs * STEPS * BATCH
  images = (rng.random((n, 28, 28, 1)) < 0.3).astype(np.float32)
  if poison is not None:
    start = ((poison[0] - 1) * STEPS + poison[1] - 1) * BATCH
    images[start : start + BATCH] = np.inf
  return {"image": images, "label": np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]}


def fit(model_dir, epochs, poison=None, flags_text=None, model_config=MODEL, **train_kw):
  """driver.train up to `epochs` epochs of STEPS steps (one step an execution)."""
  batches = data(max(epochs, 4), poison)
  kw = dict(
    epochs=epochs, batch_size=BATCH, warmup_epochs=0, steps_per_execution=1, strategy="default"
  )
  kw.update(train_kw)
  stream = StreamData(
    model_config.modalities,
    lambda start: (
      tf.data.Dataset.from_tensor_slices(batches).batch(BATCH).skip(start * STEPS).repeat()
    ),
    STEPS,
  )
  return driver.train(
    model_config,
    stream,
    str(model_dir),
    options.TrainConfig.make(**kw),
    flags_text=flags_text,
    verbose=0,
  )


def ckpt(model_dir, n):
  return str(Path(model_dir) / run_dir.CKPT_DIR / f"ckpt-{n}")


def all_finite(prefix):
  reader = tf.train.load_checkpoint(prefix)
  dtypes = reader.get_variable_to_dtype_map()
  return all(np.isfinite(reader.get_tensor(k)).all() for k, d in dtypes.items() if d.is_floating)


def checkpoints_on_disk(model_dir):
  return sorted(
    p.name[: -len(".index")] for p in (Path(model_dir) / run_dir.CKPT_DIR).glob("*.index")
  )


def snapshot(directory):
  """{path: (size, mtime)} of every file under directory."""
  return {
    os.path.join(r, f): (os.path.getsize(os.path.join(r, f)), os.path.getmtime(os.path.join(r, f)))
    for r, _, fs in os.walk(directory)
    for f in fs
  }


def file_bytes(model_dir, n):
  return {p.name: p.read_bytes() for p in (Path(model_dir) / "ckpt").glob(f"ckpt-{n}.*")}


def truncate_data(model_dir, n):
  (data_file,) = (Path(model_dir) / "ckpt").glob(f"ckpt-{n}.data-*")
  content = data_file.read_bytes()
  data_file.write_bytes(content[: len(content) // 2])
