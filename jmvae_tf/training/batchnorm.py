"""BatchNorm statistics recomputed from training batches (runners.train
--recalibrate_batchnorm): what inference normalises with, set without changing a weight."""

from __future__ import annotations

from typing import Dict, Iterable, List

import tensorflow as tf
import tf_keras as keras


def batchnorm_layers(model: keras.Model) -> List[keras.layers.BatchNormalization]:
  return [m for m in model.submodules if isinstance(m, keras.layers.BatchNormalization)]


def recalibrate_batchnorm(model, batches: Iterable[Dict], seed: int = 0) -> int:
  """Sets every BatchNorm layer's moving mean and variance to the average of its batch
  statistics over `batches` (training-mode passes of the model's loss terms, the inputs
  the layers normalise in training; a layer used more than once a pass, as the VAE-GAN's
  decoder and discriminator are, averages every use). The exponential moving averages
  that inference uses (Keras' momentum 0.99) still hold about 5% of their initial values
  after 300 steps and lag the weights, so short runs evaluate much blurrier than they
  train (docs/CELEBA.md). No weight changes. The variances are those Keras' moving averages
  take: the batch variance for dense inputs, with Bessel's correction for fused (image)
  ones. Runs eagerly. Returns how many batches were read (0 with no BatchNorm layer)."""
  if not tf.executing_eagerly():
    raise RuntimeError("recalibrate_batchnorm counts each layer's uses eagerly; call it eagerly")
  layers = batchnorm_layers(model)
  if not layers:
    return 0
  momenta = [layer.momentum for layer in layers]

  def averaging(layer):
    uses = [0]

    def call(*args, **kwargs):  # the moving average of n values with weight 1/n: their mean
      if tf.executing_eagerly():  # not Keras' symbolic calls that infer output shapes
        uses[0] += 1
        layer.momentum = (uses[0] - 1) / uses[0]
      return type(layer).call(layer, *args, **kwargs)

    return call

  statistics = [v for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
  earlier = [v.numpy() for v in statistics]
  for v in statistics:  # the first use's update, v - (v - value) * 1, is then exactly value
    v.assign(tf.zeros_like(v))
  count = 0
  for layer in layers:  # Keras' __call__ looks up layer.call each time; not tracked
    layer.__dict__["call"] = averaging(layer)
  # A training step's pass: through the masks of a batch that has them (step_terms).
  terms = getattr(model, "step_terms", model.loss_terms)
  try:
    for count, batch in enumerate(batches, start=1):
      step_seed = tf.random.experimental.stateless_fold_in(
        tf.constant([seed, 0x5EED], tf.int64), count
      )
      terms(batch, step_seed, training=True)
  finally:
    for layer, momentum in zip(layers, momenta):
      del layer.__dict__["call"]
      layer.momentum = momentum
    if not count:  # no batch read: the statistics as they were
      for v, value in zip(statistics, earlier):
        v.assign(value)
  return count
