"""TensorBoard summaries beyond Keras' own loss curves: scalars, a latent histogram, pictures
of what the model generates (`jmvae_tf.inspection.pictures`), and the run's hyperparameters
for the HParams dashboard (an evaluation's are `jmvae_tf.evaluation.report.write_summaries`).

Under MODEL_DIR/logs (Keras' TensorBoard callback writes `epoch_<term>` for every loss
term, and `epoch_kl_weight`, to train/ and, every --eval_every epochs, validation/):

  train/   learning_rate, examples_per_second, latent_mean (a histogram) every epoch;
           every `image_every` epochs and after the last one, the pictures of
           `jmvae_tf.inspection.pictures` (what the model generates of held-out examples)
           and, for a model with a text modality, its captions as Markdown tables
           (`<caption>/generated` in the TEXT dashboard: `jmvae_tf.inspection.captions`)
  (root)   the HParams session: model options, training settings and data set; TensorBoard
           takes each run's final train/ and validation/ scalars as its metrics.

Steps are the 0-based epoch index, the x axis of Keras' own scalars.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Dict, Optional

import tensorflow as tf
import tf_keras as keras

from jmvae_tf.inspection.captions import caption_rows
from jmvae_tf.inspection.pictures import pictures

Batch = Dict[str, tf.Tensor]

NUM_EXAMPLES = 8  # held-out examples per picture
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
  already logs it as epoch_kl_weight. Pictures, captions and the histogram need
  `probe_batch` (held-out examples, every modality); without one only the scalars and HParams
  are written. Pictures and captions come every `image_every` epochs and after the last.
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
        # [] for a model without a text modality: no text summary at all.
        for caption in caption_rows(self.model, self.display, self.model.seed):
          tf.summary.text(caption.tag, caption.text, description=caption.description)
    self.writer.flush()
