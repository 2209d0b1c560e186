"""Pictures of what a model generates, for TensorBoard (`jmvae_tf.training.summaries`): for
every generated modality shaped like a picture ([H, W, 1] or [H, W, 3]),
  <m>/reconstructed     row 1 held-out examples, then the mean of p(m|z) with z the posterior
                        mean given every modality, and given m alone where the model can
                        infer z from it
  <m>/from_<given>      the mean of p(m|z) for draws of z given the other modalities: one
                        column per class of a categorical one (MNIST: labels 0-9), else one
                        per held-out example (CelebA: their attributes), whose m is the first
                        row; a model that imputes m (JMVAE) runs ITERATIVE_STEPS rounds of
                        iterative sampling first
  <m>/from_prior        draws of z from p(z) (models without a condition)
What a model cannot generate or infer is left out, so a one-way model (CVAE, CMMA) shows only
its own direction. Everything goes through the models' inference API.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from jmvae_tf.core.likelihoods import to_uint8
from jmvae_tf.core.modalities import IMAGE, Modality
from jmvae_tf.core.sampling import split_seed, tile_batch

Batch = Dict[str, tf.Tensor]
NUM_DRAWS = 3  # rows of z draws per generated picture
MAX_CLASSES = 10  # columns for a categorical condition
ITERATIVE_STEPS = 10  # eq 6 rounds where a model imputes a missing modality
PAD = 2  # pixels between the cells of a grid


def is_picture(modality: Modality) -> bool:
  return modality.family == IMAGE and modality.shape[-1] in (1, 3)


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
