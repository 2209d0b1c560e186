"""Latent embeddings of a data set for the TensorBoard Projector.

`write_projector` writes, into one directory that `tensorboard --logdir` reads as
its root run ("."):

  embedding.ckpt-1.*        tf.train.Checkpoint with one [N, latent_dim] variable per
                            embedding (keys `<name>/.ATTRIBUTES/VARIABLE_VALUE`)
  checkpoint                the checkpoint state file (how the plugin finds it)
  projector_config.pbtxt    one embedding per encoder, each with the metadata and sprite
  metadata.tsv              one label per line, no header (one column: the Projector
                            reads a header only when there are several, tab-separated)
  sprite.png                the digits in a square grid, row-major, at most 8192x8192

Embeddings (`latent_means`): `z_joint` = mean of q(z|x,w) (q(z_1|x,w) for the
hierarchy) and, per modality, `z_from_<name>`: JMVAE-kl's unimodal encoder; for
JMVAE and hierarchical JMVAE the other modality is imputed by iterative sampling
(`evaluation.iterative_impute`, from 0) and the joint encoder read; CMMA's
`z_from_<condition>` is its conditional prior p(z|c); CVAE has only `z_joint`.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Dict, Iterable, Sequence

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector

from jmvae_tf.evaluation import iterative
from jmvae_tf.models import CMMA, JMVAE, JMVAEKL, ConditionalModel, HierarchicalJMVAE, MultimodalVAE

Batch = Dict[str, tf.Tensor]
MAX_SPRITE_PIXELS = 8192  # the Projector's limit on each side of the sprite
CHECKPOINT_PREFIX = "embedding.ckpt"
METADATA_FILE = "metadata.tsv"
SPRITE_FILE = "sprite.png"
JOINT = "z_joint"


def tensor_name(embedding: str) -> str:
  """The checkpoint key tf.train.Checkpoint gives a variable attached as `embedding`."""
  return f"{embedding}/.ATTRIBUTES/VARIABLE_VALUE"


def encoders(model: MultimodalVAE, iterations: int) -> Dict[str, Callable[[Batch, tf.Tensor], tf.Tensor]]:
  """Embedding name -> fn(batch, seed) giving latent means [B, latent_dim]."""
  if iterations < 0:
    raise ValueError(f"iterations must be >= 0, got {iterations}")
  fns = {JOINT: lambda batch, seed: model.encode(batch, training=False)[0]}
  if isinstance(model, ConditionalModel):
    if isinstance(model, CMMA):
      condition = model.condition
      fns[f"z_from_{condition}"] = lambda batch, seed: model.prior({condition: batch[condition]}, training=False)[0]
    return fns
  if not isinstance(model, (JMVAE, HierarchicalJMVAE)):
    raise ValueError(f"no embeddings for {type(model).__name__}")
  for given in model.modality_specs:
    others = [m for m in model.modality_specs if m.name != given.name]
    if isinstance(model, JMVAEKL):
      def from_one(batch, seed, name=given.name):
        return model.encode_subset({name: batch[name]}, [name], training=False)[0]
    else:
      if len(others) != 1:
        raise ValueError("iterative sampling embeddings need exactly two modalities")

      def from_one(batch, seed, name=given.name, missing=others[0]):
        imputed = iterative.iterative_impute(model, {name: batch[name]}, missing.name, iterations, seed)
        return model.encode(imputed, training=False)[0]
    fns[f"z_from_{given.name}"] = from_one
  return fns


def latent_means(model: MultimodalVAE, batches: Iterable[Batch], iterations: int = 100,
                 seed: int = 0) -> Dict[str, np.ndarray]:
  """Each embedding's latent means over all `batches`, in order ([N, latent_dim] float32).

  Batch i samples with the stateless seed fold_in([seed, 0], i).
  """
  fns = encoders(model, iterations)

  @tf.function(autograph=False)
  def embed_batch(batch, batch_seed):
    return {name: fn(batch, batch_seed) for name, fn in fns.items()}

  base_seed = tf.constant([seed, 0], tf.int64)
  parts = {name: [] for name in fns}
  for i, batch in enumerate(batches):
    batch = {name: batch[name] for name in model.modality_names}
    out = embed_batch(batch, tf.random.experimental.stateless_fold_in(base_seed, i))
    for name, value in out.items():
      parts[name].append(value.numpy())
  if not any(parts.values()):
    raise ValueError("latent_means: no batches")
  return {name: np.concatenate(values).astype(np.float32) for name, values in parts.items()}


def sprite_grid(images: np.ndarray) -> np.ndarray:
  """uint8 [N, H, W] -> one [S*H, S*W] image, S = ceil(sqrt(N)), row-major, zero-padded.

  The Projector finds image i at row i // S, column i % S of the sprite.
  """
  images = np.asarray(images)
  if images.ndim != 3:
    raise ValueError(f"sprite images must be [N, H, W], got shape {images.shape}")
  n, h, w = images.shape
  side = max(1, math.ceil(math.sqrt(n)))
  if side * max(h, w) > MAX_SPRITE_PIXELS:
    most = (MAX_SPRITE_PIXELS // max(h, w)) ** 2
    raise ValueError(f"a sprite of {n} images of {h}x{w} would be {side * h}x{side * w} pixels; the Projector "
                     f"allows {MAX_SPRITE_PIXELS}x{MAX_SPRITE_PIXELS} (at most {most} such images)")
  padded = np.zeros((side * side, h, w), np.uint8)
  padded[:n] = images
  return padded.reshape(side, side, h, w).transpose(0, 2, 1, 3).reshape(side * h, side * w)


def write_projector(output_dir: str, embeddings: Dict[str, np.ndarray], labels: Sequence[int],
                    images: np.ndarray) -> str:
  """Writes the checkpoint, metadata, sprite and projector config; returns output_dir."""
  labels = np.asarray(labels)
  images = np.asarray(images)
  if not embeddings:
    raise ValueError("write_projector: no embeddings")
  for name, tensor in embeddings.items():
    if tensor.ndim != 2 or tensor.shape[0] != labels.shape[0]:
      raise ValueError(f"embedding {name!r} has shape {tensor.shape}; need [{labels.shape[0]}, D] to match "
                       "the metadata rows")
  if images.shape[0] != labels.shape[0]:
    raise ValueError(f"{images.shape[0]} sprite images for {labels.shape[0]} labels")
  sprite = sprite_grid(images)  # checks the size limit before anything is written
  tf.io.gfile.makedirs(output_dir)

  with tf.io.gfile.GFile(os.path.join(output_dir, METADATA_FILE), "w") as f:
    f.write("".join(f"{int(label)}\n" for label in labels))
  with tf.io.gfile.GFile(os.path.join(output_dir, SPRITE_FILE), "wb") as f:
    f.write(tf.io.encode_png(sprite[..., np.newaxis]).numpy())
  variables = {name: tf.Variable(tensor, trainable=False, name=name) for name, tensor in embeddings.items()}
  tf.train.Checkpoint(**variables).save(os.path.join(output_dir, CHECKPOINT_PREFIX))

  config = projector.ProjectorConfig()
  for name in embeddings:
    embedding = config.embeddings.add()
    embedding.tensor_name = tensor_name(name)
    embedding.metadata_path = METADATA_FILE
    embedding.sprite.image_path = SPRITE_FILE
    embedding.sprite.single_image_dim.extend([images.shape[2], images.shape[1]])  # width, height
  projector.visualize_embeddings(output_dir, config)
  return output_dir


def embed(model: MultimodalVAE, batches: Iterable[Batch], labels: Sequence[int], images: np.ndarray,
          output_dir: str, iterations: int = 100, seed: int = 0) -> Dict[str, np.ndarray]:
  """Latent means of `batches` (the binarised `images` with their `labels`) for the Projector."""
  embeddings = latent_means(model, batches, iterations, seed)
  write_projector(output_dir, embeddings, labels, images)
  return embeddings
