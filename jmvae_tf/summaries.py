"""TensorBoard summaries beyond Keras' own loss curves: scalars, a latent histogram,
pictures of what the model generates, and the run's hyperparameters for the HParams
dashboard.

Under MODEL_DIR/logs (Keras' TensorBoard callback writes `epoch_<term>` for every loss
term, and `epoch_kl_weight`, to train/ and, every --eval_every epochs, validation/):

  train/   learning_rate, examples_per_second, latent_mean (a histogram) every epoch;
           every `image_every` epochs and after the last one, one grid per picture:
             <m>/reconstructed     row 1 held-out examples, then the mean of p(m|z) with
                                   z the posterior mean given every modality, and given
                                   m alone where the model can infer z from it
             <m>/from_<given>      the mean of p(m|z) for draws of z given the other
                                   modalities: one column per class of a categorical one
                                   (MNIST: labels 0-9), else one per held-out example
                                   (CelebA: their attributes), whose m is the first row;
                                   a model that imputes m (JMVAE) runs ITERATIVE_STEPS
                                   rounds of iterative sampling first
             <m>/from_prior        draws of z from p(z) (models without a condition)
  (root)   the HParams session: model options, training settings and data set; TensorBoard
           takes each run's final train/ and validation/ scalars as its metrics.

<m> is every generated modality shaped like a picture ([H, W, 1] or [H, W, 3]); what a
model cannot generate or infer is left out, so a one-way model (CVAE, CMMA) shows only
its own direction. Everything goes through the models' inference API. Steps are the
0-based epoch index, the x axis of Keras' own scalars.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

from jmvae_tf.likelihoods import to_uint8
from jmvae_tf.modalities import Modality
from jmvae_tf.models.base import split_seed, tile_batch

Batch = Dict[str, tf.Tensor]

NUM_EXAMPLES = 8  # held-out examples per picture
NUM_DRAWS = 3  # rows of z draws per generated picture
MAX_CLASSES = 10  # columns for a categorical condition
ITERATIVE_STEPS = 10  # eq 6 rounds where a model imputes a missing modality
PAD = 2  # pixels between the cells of a grid
# Training settings shown in the HParams dashboard (those that change what is learned).
TRAIN_HPARAMS = (
  "epochs",
  "batch_size",
  "learning_rate",
  "adam_epsilon",
  "clipnorm",
  "warmup_epochs",
  "data_seed",
  "precision",
)


def is_picture(modality: Modality) -> bool:
  return modality.is_image and modality.shape[-1] in (1, 3)


def grid(rows: Sequence[np.ndarray], pad: int = PAD, fill: int = 255) -> np.ndarray:
  """uint8 [1, H', W', C]: row r holds the pictures rows[r] ([N_r, H, W, C]) side by side,
  cells `pad` pixels apart; shorter rows are left blank at the end."""
  cols = max(len(r) for r in rows)
  h, w, c = rows[0].shape[1:]
  out = np.full((len(rows) * (h + pad) - pad, cols * (w + pad) - pad, c), fill, np.uint8)
  for i, row in enumerate(rows):
    for j, picture in enumerate(row):
      out[i * (h + pad) : i * (h + pad) + h, j * (w + pad) : j * (w + pad) + w] = picture
  return out[np.newaxis]


@dataclasses.dataclass
class Picture:
  tag: str
  image: np.ndarray  # uint8 [1, H, W, C]
  description: str


def _posterior_draws(model, batch: Batch, given: Sequence[str], n: int, seed) -> tf.Tensor:
  """n draws of z_1 per example given `given` ([n*B, D], sample-major)."""
  seed_infer, seed_draw = split_seed(seed, 2)
  steps = ITERATIVE_STEPS if model.uses_iterative_sampling(given) else 0
  layers = model.posterior_layers(batch, given, seed_infer, steps)
  return model.latent_draws(layers, n, seed_draw)


def _condition_columns(model, display: Batch, given: Sequence[str]) -> Tuple[Batch, bool, str]:
  """(the given modalities' values, one column each; whether the columns are the held-out
  examples; what the columns are)."""
  specs = {m.name: m for m in model.modality_specs}
  classes = specs[given[0]].likelihood.classes(specs[given[0]].shape) if len(given) == 1 else None
  if classes is not None:
    shown = classes[:MAX_CLASSES]
    return {given[0]: tf.constant(shown)}, False, f"{given[0]} = 0..{len(shown) - 1}"
  return {g: display[g] for g in given}, True, f"{', '.join(given)} of the examples in row 1"


def pictures(model, display: Batch, seed: int = 0) -> List[Picture]:
  """The pictures of `model` on the held-out examples `display` (every modality, [N, ...]),
  drawn with the stateless `seed`: the same seed gives the same draws every epoch."""
  specs = {m.name: m for m in model.modality_specs}
  everything = model.modality_names
  out = []
  for index, name in enumerate(model.generated_modalities):
    if not is_picture(specs[name]):
      continue
    # The range drawn black..white: the likelihood's, or where it has none the examples'.
    value_range = specs[name].likelihood.picture_range(display[name])
    originals = to_uint8(display[name], value_range)
    seeds = split_seed(tf.constant([seed, index], tf.int64), 3)

    rows, how = [originals], ["row 1: held-out examples"]
    for given in dict.fromkeys((everything, (name,))):  # (name,) once when it is everything
      if not model.can_infer(given):
        continue
      steps = ITERATIVE_STEPS if model.uses_iterative_sampling(given) else 0
      z, _ = model.posterior(display, given, seeds[0], steps)
      rows.append(to_uint8(model.decode(z, display, names=[name])[name].mean(), value_range))
      how.append(
        f"row {len(rows)}: p({name}|z) at the mean of {model.describe_inference(given, steps)}"
      )
    out.append(Picture(f"{name}/reconstructed", grid(rows), "; ".join(how)))

    others = [m for m in everything if m != name]
    subsets = [g for g in model.inference_subsets() if set(g) <= set(others)]
    for given in subsets:
      columns, with_examples, what = _condition_columns(model, display, given)
      z = _posterior_draws(model, columns, given, NUM_DRAWS, seeds[1])
      mean = model.decode(z, tile_batch(columns, NUM_DRAWS), names=[name])[name].mean()
      drawn = to_uint8(mean, value_range).reshape((NUM_DRAWS, -1) + originals.shape[1:])
      rows = ([originals] if with_examples else []) + list(drawn)
      steps = ITERATIVE_STEPS if model.uses_iterative_sampling(given) else 0
      description = (
        f"columns: {what}; {'rows 2 on' if with_examples else 'rows'}: {NUM_DRAWS} draws of "
        f"{model.describe_inference(given, steps)}, the mean of p({name}|z)"
      )
      out.append(Picture(f"{name}/from_{'_'.join(given)}", grid(rows), description))

    if not model.conditioning_modalities:
      z = model.sample_prior(NUM_DRAWS * len(originals), seeds[2])
      mean = model.decode(z, names=[name])[name].mean()
      drawn = to_uint8(mean, value_range).reshape((NUM_DRAWS, -1) + originals.shape[1:])
      description = f"z ~ p(z), the mean of p({name}|z)"
      out.append(Picture(f"{name}/from_prior", grid(list(drawn)), description))
  return out


def hparams(model_config, train_config) -> Dict[str, object]:
  """The run's settings for the HParams dashboard: the model, its options, the data set
  and the training settings that change what is learned (None values left out)."""
  values = {"model": model_config.model, "dataset": model_config.dataset}
  values.update(dataclasses.asdict(model_config.options))
  settings = train_config.as_dict()
  values.update({k: settings[k] for k in TRAIN_HPARAMS})
  return {k: v for k, v in values.items() if isinstance(v, (bool, int, float, str))}


class Summaries(keras.callbacks.Callback):
  """TensorBoard extras beyond Keras' own loss curves (see the module docstring).

  `kl_weight` is not written here: train_step returns it, so Keras' TensorBoard callback
  already logs it as epoch_kl_weight. Pictures and the histogram need `probe_batch`
  (held-out examples, every modality); without one only the scalars and HParams are
  written. Pictures come every `image_every` epochs and after the last.
  """

  def __init__(
    self,
    log_dir: str,
    model_config,
    train_config,
    probe_batch: Optional[Batch] = None,
    image_every: Optional[int] = None,
  ):
    super().__init__()
    self.log_dir = log_dir
    self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "train"))
    self.model_config, self.train_config = model_config, train_config
    self.batch_size = train_config.fixed.batch_size
    self.probe_batch = probe_batch
    self.image_every = max(1, image_every or train_config.run.eval_every)
    self.display = None
    if probe_batch is not None:
      self.display = {k: v[:NUM_EXAMPLES] for k, v in probe_batch.items()}
    self._start = self._last = None
    self._steps = 0

  def on_train_begin(self, logs=None):
    # A session per training call: a resumed run shows the same settings again.
    from tensorboard.plugins.hparams import api as hp  # pylint: disable=g-import-not-at-top

    with tf.summary.create_file_writer(self.log_dir).as_default():
      hp.hparams(hparams(self.model_config, self.train_config))

  def on_epoch_begin(self, epoch, logs=None):
    self._start, self._steps = time.perf_counter(), 0

  def on_train_batch_end(self, batch, logs=None):
    # With steps_per_execution, `batch` is the index of the last step run.
    self._last, self._steps = time.perf_counter(), batch + 1

  def on_epoch_end(self, epoch, logs=None):
    with self.writer.as_default(step=epoch):
      lr = self.model.optimizer.learning_rate
      tf.summary.scalar(
        "learning_rate", lr(self.model.optimizer.iterations) if callable(lr) else lr
      )
      if self._last is not None and self._last > self._start:
        tf.summary.scalar(
          "examples_per_second", self._steps * self.batch_size / (self._last - self._start)
        )
      if self.probe_batch is not None:
        mean, _ = self.model.posterior(self.probe_batch, self.model.modality_names)
        tf.summary.histogram("latent_mean", mean)
      last = epoch + 1 == (self.params or {}).get("epochs")
      if self.display is not None and ((epoch + 1) % self.image_every == 0 or last):
        for picture in pictures(self.model, self.display, self.model.seed):
          tf.summary.image(picture.tag, picture.image, description=picture.description)
    self.writer.flush()


def write_evaluation(log_dir: str, record: Dict, epoch: int):
  """An evaluation (runners.evaluate's record) as TensorBoard scalars at the checkpoint's
  epoch: log_likelihood/<target|given> (and iwae/...), coherence/<target|given> and
  coherence/prior."""
  writer = tf.summary.create_file_writer(log_dir)
  with writer.as_default(step=epoch):
    for key, value in record.get("values", {}).items():
      tf.summary.scalar(f"log_likelihood/{key}", value)
    for key, value in record.get("iwae", {}).items():
      tf.summary.scalar(f"iwae/{key}", value)
    coherence = record.get("coherence") or {}
    for key, value in coherence.get("pairs", {}).items():
      tf.summary.scalar(f"coherence/{key}", value)
    if coherence.get("prior") is not None:
      tf.summary.scalar("coherence/prior", coherence["prior"])
  writer.flush()
