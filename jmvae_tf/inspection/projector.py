"""Latent embeddings of a data set for the TensorBoard Projector.

`write_projector` writes, into one directory that `tensorboard --logdir` reads as
its root run ("."):

  embedding.ckpt-1.*        tf.train.Checkpoint with one [N, latent_dim] variable per
                            embedding (keys `<name>/.ATTRIBUTES/VARIABLE_VALUE`)
  checkpoint                the checkpoint state file (how the plugin finds it)
  projector_config.pbtxt    one embedding per encoder, each with the metadata and sprite
  metadata.tsv              one line per example; a header only when there are several
                            tab-separated columns (e.g. CelebA's 40 attributes)
  sprite.png                the examples' pictures in a square grid, row-major, at most
                            8192x8192

Embeddings (`latent_means`), all through the models' inference API: `z_joint` = mean
of q(z|all modalities) (q(z_1|x,w) for the hierarchy) and, per set of modalities the model
can infer z from (each one alone; with three, each pair too), `z_from_<names>` = the mean of
`model.posterior` given them: JMVAE-kl's unimodal encoder; JMVAE and hierarchical JMVAE impute the
other modality by iterative sampling; CMMA's conditional prior p(z|c). An embedding that is the same
for every example (CVAE's prior N(0, I) given the label) is left out.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Dict, Iterable, Sequence

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector

from jmvae_tf.models import MultimodalVAE

Batch = Dict[str, tf.Tensor]
MAX_SPRITE_PIXELS = 8192  # the Projector's limit on each side of the sprite
CHECKPOINT_PREFIX = "embedding.ckpt"
METADATA_FILE = "metadata.tsv"
SPRITE_FILE = "sprite.png"
JOINT = "z_joint"


def tensor_names(embeddings: Sequence[str]) -> Dict[str, str]:
  """Embedding name -> its tensor's checkpoint key, numbered in the given order.

  The Projector opens on the first tensor name in sorted order, so the numbers make it open on
  the first embedding (the joint one) rather than on `z_from_image`."""
  return {name: f"{i}_{name}/.ATTRIBUTES/VARIABLE_VALUE" for i, name in enumerate(embeddings)}


def encoders(
  model: MultimodalVAE, iterations: int
) -> Dict[str, Callable[[Batch, tf.Tensor], tf.Tensor]]:
  """Embedding name -> fn(batch, seed) giving latent means [B, latent_dim]."""
  if iterations < 0:
    raise ValueError(f"iterations must be >= 0, got {iterations}")
  names = model.modality_names
  fns = {JOINT: lambda batch, seed: model.posterior(batch, names)[0]}
  for given in model.inference_subsets():
    if len(given) == len(names):
      continue

    def from_subset(batch, seed, given=given):
      return model.posterior({n: batch[n] for n in given}, given, seed, iterations)[0]

    fns[f"z_from_{'_'.join(given)}"] = from_subset
  return fns


def latent_means(
  model: MultimodalVAE, batches: Iterable[Batch], iterations: int = 100, seed: int = 0
) -> Dict[str, np.ndarray]:
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
  means = {name: np.concatenate(values).astype(np.float32) for name, values in parts.items()}
  # An embedding equal for every example (CVAE's N(0, I) prior given the label) shows nothing.
  return {name: m for name, m in means.items() if name == JOINT or np.ptp(m, axis=0).max() > 0}


def check_sprite_size(n: int, image_size: Sequence[int]) -> None:
  """A ValueError when n images of image_size = (H, W) exceed the Projector's sprite limit."""
  h, w = int(image_size[0]), int(image_size[1])
  side = max(1, math.ceil(math.sqrt(n)))
  if side * max(h, w) > MAX_SPRITE_PIXELS:
    most = (MAX_SPRITE_PIXELS // max(h, w)) ** 2
    raise ValueError(
      f"a sprite of {n} images of {h}x{w} would be {side * h}x{side * w} pixels; the "
      f"Projector allows {MAX_SPRITE_PIXELS}x{MAX_SPRITE_PIXELS} (at most {most} such "
      "images)"
    )


def sprite_grid(images: np.ndarray) -> np.ndarray:
  """uint8 [N, H, W(, C)] -> one [S*H, S*W(, C)] image, S = ceil(sqrt(N)), row-major,
  zero-padded. The Projector finds image i at row i // S, column i % S of the sprite."""
  images = np.asarray(images)
  if images.ndim not in (3, 4):
    raise ValueError(f"sprite images must be [N, H, W] or [N, H, W, C], got shape {images.shape}")
  n, h, w = images.shape[:3]
  check_sprite_size(n, (h, w))
  side = max(1, math.ceil(math.sqrt(n)))
  channels = images.shape[3:]
  padded = np.zeros((side * side, h, w) + channels, np.uint8)
  padded[:n] = images
  grid = padded.reshape((side, side, h, w) + channels).swapaxes(1, 2)
  return grid.reshape((side * h, side * w) + channels)


def _cell(value) -> str:
  """A metadata value as one TSV cell (a class's name may hold a tab or a line break)."""
  text = str(value.item() if isinstance(value, np.generic) else value)
  return " ".join(text.split()) if any(c in text for c in "\t\r\n") else text


def metadata_tsv(metadata: Dict[str, np.ndarray]) -> str:
  """The Projector's metadata: one line per example; a header only with several columns
  (with one column the Projector reads no header)."""
  columns = {name: np.asarray(values) for name, values in metadata.items()}
  rows = zip(*[[_cell(v) for v in values] for values in columns.values()])
  lines = ["\t".join(row) for row in rows]
  if len(columns) > 1:
    lines.insert(0, "\t".join(columns))
  return "".join(line + "\n" for line in lines)


def write_projector(
  output_dir: str,
  embeddings: Dict[str, np.ndarray],
  metadata: Dict[str, np.ndarray],
  images: np.ndarray,
) -> str:
  """Writes the checkpoint, metadata, sprite and projector config; returns output_dir.

  `metadata`: named columns, one value per example (a data set's `metadata`)."""
  images = np.asarray(images)
  if not embeddings:
    raise ValueError("write_projector: no embeddings")
  n = len(next(iter(metadata.values())))
  for name, tensor in embeddings.items():
    if tensor.ndim != 2 or tensor.shape[0] != n:
      raise ValueError(
        f"embedding {name!r} has shape {tensor.shape}; need [{n}, D] to match the metadata rows"
      )
  if images.shape[0] != n:
    raise ValueError(f"{images.shape[0]} sprite images for {n} metadata rows")
  sprite = sprite_grid(images)  # checks the size limit before anything is written
  tf.io.gfile.makedirs(output_dir)

  with tf.io.gfile.GFile(os.path.join(output_dir, METADATA_FILE), "w") as f:
    f.write(metadata_tsv(metadata))
  with tf.io.gfile.GFile(os.path.join(output_dir, SPRITE_FILE), "wb") as f:
    f.write(tf.io.encode_png(sprite if sprite.ndim == 3 else sprite[..., np.newaxis]).numpy())
  keys = tensor_names(list(embeddings))
  variables = {
    keys[name].split("/")[0]: tf.Variable(tensor, trainable=False, name=name)
    for name, tensor in embeddings.items()
  }
  tf.train.Checkpoint(**variables).save(os.path.join(output_dir, CHECKPOINT_PREFIX))

  config = projector.ProjectorConfig()
  for name in embeddings:
    embedding = config.embeddings.add()
    embedding.tensor_name = keys[name]
    embedding.metadata_path = METADATA_FILE
    embedding.sprite.image_path = SPRITE_FILE
    embedding.sprite.single_image_dim.extend([images.shape[2], images.shape[1]])  # width, height
  projector.visualize_embeddings(output_dir, config)
  return output_dir


def embed(
  model: MultimodalVAE,
  batches: Iterable[Batch],
  metadata: Dict[str, np.ndarray],
  images: np.ndarray,
  output_dir: str,
  iterations: int = 100,
  seed: int = 0,
) -> Dict[str, np.ndarray]:
  """Latent means of `batches` (the examples pictured by `images` and described by `metadata`)
  for the Projector."""
  embeddings = latent_means(model, batches, iterations, seed)
  write_projector(output_dir, embeddings, metadata, images)
  return embeddings


def write_embeddings(
  model: MultimodalVAE,
  data,
  output_dir: str,
  num_examples: int = 10000,
  iterations: int = 100,
  batch_size: int = 500,
  data_seed: int = 0,
  seed: int = 0,
) -> Dict[str, np.ndarray]:
  """The Projector's files for the first `num_examples` test examples of `data` (a DataSet:
  its test batches, metadata and pictures) in `output_dir` (`tensorboard --logdir` it);
  returns the embeddings. Checks the sprite's size before any work."""
  picture_size = data.display_images("test", 1).shape[1:3]
  try:
    check_sprite_size(num_examples, picture_size)
  except ValueError as e:
    raise ValueError(f"num_examples={num_examples}: {e}") from None
  n = data.check_split("test", num_examples)
  images = data.display_images("test", n, data_seed)
  batches = data.eval_dataset("test", batch_size, data_seed, n)
  return embed(model, batches, data.metadata("test", n), images, output_dir, iterations, seed)
