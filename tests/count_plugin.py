"""A plug-in, as a user would write one in a module of their own (no edit to jmvae-tf): counts.

It registers
  - a likelihood kind, "poisson": independent Poisson counts (tfp.layers.IndependentPoisson),
    what serving returns for it (the rates and a sampled count) and what a served input may
    hold (counts: non-negative);
  - a network family, "counts" (a vector of counts), and its networks: an encoder branch that
    reads log(1 + counts) through an MLP, and a decoder whose last layer is the Poisson's;
  - a data set, "counts": each example a class (one of 10) and 20 counts whose rates depend on
    it, read from DATA_DIR/counts.npz (`write` makes one).

    python -m runners.train --plugins=count_plugin --dataset=counts --data_dir=DIR ...

Everything downstream (evaluation, coherence of the class read off the counts, export, the
run loading back) works through the plug-in points; the run's run.json names this module.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

import jmvae_tf
from jmvae_tf.core.likelihoods import HEAD_DTYPE
from jmvae_tf.networks import blocks
from pipelines.registry import register_dataset

NUM_CLASSES, NUM_BINS = 10, 20
FILE = "counts.npz"


@jmvae_tf.register_likelihood
class Poisson(jmvae_tf.Likelihood):
  """Independent Poisson counts; the decoder's parameters are log-rates."""

  kind = "poisson"

  def params_size(self, shape):
    return tfp.layers.IndependentPoisson.params_size(shape)

  def distribution_layer(self, shape, variance=1.0):
    return tfp.layers.IndependentPoisson(
      shape, convert_to_tensor_fn=tfp.distributions.Distribution.mean, dtype=HEAD_DTYPE
    )

  def domain(self, name, value):
    return (
      tf.reduce_all(value >= 0),
      f"{name}: counts must be non-negative; got min {{}}",
      [tf.reduce_min(value)],
    )

  def describe_domain(self):
    return "non-negative counts"

  def serving_outputs(self, dist, seed):
    rate = dist.mean()
    sample = tf.random.stateless_poisson(tf.shape(rate), seed, rate, dtype=tf.float32)
    return {"rate": rate, "sample": sample}


def _count_branch(modality, name):
  return keras.Sequential(
    [keras.layers.Lambda(tf.math.log1p, name="log1p"), blocks.mlp((64, 64), name="mlp")],
    name=name,
  )


def _count_decoder(modality, name, variance=1.0):
  return blocks.Decoder(blocks.mlp((64, 64), name=f"{name}_body"), modality, name=name)


def _one_dimensional(name, shape):
  if len(shape) != 1:
    raise ValueError(f"modality {name!r} of the counts family needs shape (bins,), got {shape}")


jmvae_tf.register_family("counts", "a vector of counts", _one_dimensional)
jmvae_tf.register_family_networks("counts", _count_branch, _count_decoder)

MODALITIES = (
  jmvae_tf.Modality("counts", "poisson", (NUM_BINS,), "counts"),
  jmvae_tf.Modality("label", "categorical", (NUM_CLASSES,)),
)


def rates(classes: np.ndarray) -> np.ndarray:
  """Each class raises the rate of its own two bins from 0.5 to 6."""
  out = np.full((len(classes), NUM_BINS), 0.5, np.float32)
  for k in range(2):
    out[np.arange(len(classes)), 2 * classes + k] = 6.0
  return out


def write(directory, num_train: int = 600, num_test: int = 200, seed: int = 0) -> str:
  """DIRECTORY/counts.npz of random classes and their counts; returns the directory."""
  rng = np.random.default_rng(seed)
  arrays = {}
  for split, n in (("train", num_train), ("test", num_test)):
    classes = rng.integers(0, NUM_CLASSES, n)
    arrays[f"{split}_counts"] = rng.poisson(rates(classes)).astype(np.float32)
    arrays[f"{split}_labels"] = classes
  os.makedirs(directory, exist_ok=True)
  np.savez(os.path.join(directory, FILE), **arrays)
  return str(directory)


class CountsDataSet(jmvae_tf.ArrayDataSet):
  """The counts of DATA_DIR/counts.npz with their classes; `num_train` the first N."""

  def __init__(self, data_dir=None, num_train=None, validation=False, **options):
    if options:
      raise jmvae_tf.DataError(f"--data_options: counts has no option {sorted(options)[0]!r}")
    if data_dir is None or not os.path.isfile(os.path.join(data_dir, FILE)):
      raise jmvae_tf.DataError(f"--data_dir={data_dir}: no {FILE} (count_plugin.write makes one)")
    with np.load(os.path.join(data_dir, FILE), allow_pickle=False) as f:
      arrays = {key: f[key] for key in f.files}
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)
    split = lambda name, n=None: {
      "counts": arrays[f"{name}_counts"][:n],
      "label": one_hot[arrays[f"{name}_labels"][:n]],
    }
    super().__init__(MODALITIES, split("train", num_train), test=split("test"), name="counts")


register_dataset("counts", CountsDataSet)
