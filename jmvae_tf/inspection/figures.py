"""The paper's MNIST figures 3, 4 and 5 (and the faces' 6-9, in the last section): their
values, computed through the models' inference API, and their drawings (matplotlib,
imported only when drawing).

Figure 3: images generated from each label (columns), one row per number of
  iterative-sampling steps (mean of p(x|z), z ~ q(z|x_k, w)); a model with its own
  q(z|w) (JMVAE-kl) also gets a first row from it.
Figure 4: single-conditional log p(x~|w) and log p(w~|x) against the number of steps;
  a model that needs no iterative sampling is a flat line.
Figure 5: a 2-D latent coloured by label, z ~ q(z|x,w) and z from w alone (JMVAE:
  q(z|x=0,w), the start of iterative sampling; JMVAE-kl: q(z|w)).
"""

from __future__ import annotations

import io
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from jmvae_tf.core import gaussian
from jmvae_tf.core.files import OUTPUT_KEPT, write_whole
from jmvae_tf.core.likelihoods import to_unit
from jmvae_tf.core.sampling import split_seed
from jmvae_tf.evaluation import estimators
from jmvae_tf.evaluation.table import paper_symbols
from jmvae_tf.models import iterative_impute

Batch = Dict[str, tf.Tensor]
Direction = Tuple[str, Tuple[str, ...], str]  # (target, given, its name)


def single_conditionals(model) -> List[Direction]:
  """Each modality the model generates given all the others, where it can infer z from them,
  named in the paper's symbols: log p(x~|w) and log p(w~|x) for two modalities."""
  names = model.modality_names
  symbols = paper_symbols(names)
  out = []
  for target in names:
    given = tuple(n for n in names if n != target)
    if given and target in model.generated_modalities and model.can_infer(given):
      out.append(
        (target, given, f"log p({symbols[target]}~|{','.join(symbols[g] for g in given)})")
      )
  return out


# --- values --------------------------------------------------------------------------------


def figure3_rows(
  model, given: Batch, missing: str, steps: Sequence[int], seed: int
) -> Tuple[List[str], List[np.ndarray]]:
  """(row names, rows): row k is the mean of p(missing|z), z ~ q(z|missing_k, given), where
  missing_k is the state after k rounds of iterative sampling from 0 (one chain: every
  count uses the same seed, so the rows are successive states of it). A model that
  infers z from `given` directly gets a first row from that posterior."""
  if list(steps) != sorted(steps) or any(k < 0 for k in steps):
    raise ValueError(f"steps must be non-negative and increasing, got {list(steps)}")
  names = model.modality_names
  chain_seed, direct_seed = split_seed(tf.constant([seed, 3], tf.int64), 2)
  row_names, rows = [], []
  given_names = sorted(given)
  if not model.uses_iterative_sampling(given_names):
    mean, variance = model.posterior(given, given_names)
    z = gaussian.sample(mean, variance, direct_seed)
    rows.append(model.decode(z, given, names=[missing])[missing].mean().numpy())
    row_names.append(f"q(z|{','.join(given_names)})")
  absent = [m for m in names if m not in given]  # `missing`, and any other not given
  for i, k in enumerate(steps):
    state = iterative_impute(model, given, absent, k, chain_seed)
    mean, variance = model.posterior(state, names)
    z = gaussian.sample(mean, variance, tf.random.experimental.stateless_fold_in(chain_seed, i))
    rows.append(model.decode(z, state, names=[missing])[missing].mean().numpy())
    row_names.append(f"{k} step{'s' if k != 1 else ''}")
  return row_names, rows


def figure3_from_subsets(
  model, examples: Batch, target: str, seed: int, num_steps: int = 100
) -> Tuple[List[str], List[np.ndarray]]:
  """Figure 3's analogue for any number of modalities: (row names, rows) with the examples'
  own `target` first, then one row per set of the other modalities z can be inferred from
  (smallest first), the mean of p(target|z) for a draw z given those modalities of each
  example (`num_steps` rounds of iterative sampling where the model needs them). Every row
  draws from the same seed."""
  row_seed = tf.constant([seed, 3], tf.int64)
  row_names, rows = [f"{target} (the examples')"], [examples[target].numpy()]
  for given in model.inference_subsets():
    if target in given:
      continue
    batch = {name: examples[name] for name in given}
    rows.append(model.generated_mean(batch, target, given, row_seed, num_steps).numpy())
    row_names.append(f"from {','.join(given)}")
  return row_names, rows


def figure4_curves(
  models: Dict[str, object],
  dataset: Iterable[Batch],
  steps: Sequence[int],
  num_samples: int,
  seed: int,
) -> Dict[str, Dict[str, List[float]]]:
  """{direction: {model title: mean eq 11 estimate at each step count}} for the single
  conditionals of the first model (log p(x~|w), log p(w~|x)); batch i draws from the seed
  (seed, i), as `evaluation.table.evaluate` does for one column. `dataset` is read once per
  model, direction and step count: a list or tf.data.Dataset, not an iterator."""
  directions = single_conditionals(next(iter(models.values())))
  return figure7_curves(models, dataset, steps, num_samples, seed, directions)


def figure5_latents(
  model, dataset: Iterable[Batch], seed: int, given: Sequence[str]
) -> Tuple[np.ndarray, np.ndarray, str]:
  """(z ~ q(z|all), z from `given` alone with no iterative-sampling step, how the latter
  was drawn), one row per example; batch i draws from split((seed, i))."""
  joint, alone = [], []
  for i, batch in enumerate(dataset):
    s = split_seed(tf.constant([seed, i], tf.int64), 2)
    joint.append(gaussian.sample(*model.posterior(batch, model.modality_names), s[0]).numpy())
    alone.append(gaussian.sample(*model.posterior(batch, given, num_steps=0), s[1]).numpy())
  if not joint:
    raise ValueError("figure5_latents: the data set is empty")
  how = model.describe_inference(given, 0)
  return np.concatenate(joint), np.concatenate(alone), how


# --- drawings ------------------------------------------------------------------------------


def as_picture(x: np.ndarray, value_range: Tuple[float, float]) -> np.ndarray:
  """An image for imshow: `value_range` mapped to [0, 1], a trailing channel of 1 dropped."""
  x = to_unit(x, value_range)
  return x[..., 0] if x.shape[-1] == 1 else x


def draw_figure3(
  rows: Sequence[np.ndarray],
  row_names: Sequence[str],
  column_names,
  title: str,
  value_range: Tuple[float, float],
):
  """`rows` of pictures whose values lie in `value_range` (the modality's likelihood's
  picture_range)."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  cols = len(column_names)
  fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.9, len(rows) * 0.95), squeeze=False)
  for r, (row, name) in enumerate(zip(rows, row_names)):
    for c in range(cols):
      ax = axes[r, c]
      ax.imshow(as_picture(row[c], value_range), cmap="gray", vmin=0, vmax=1)
      ax.set_xticks([]), ax.set_yticks([])
      if r == 0:
        ax.set_title(str(column_names[c]), fontsize=9)
      if c == 0:
        ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
  fig.suptitle(title, fontsize=10)
  return fig


def draw_figure4(curves: Dict[str, Dict[str, List[float]]], steps: Sequence[int]):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.8), squeeze=False)
  for ax, (name, by_model) in zip(axes[0], curves.items()):
    for title, values in by_model.items():
      ax.plot(steps, values, marker="o", label=title)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks(steps)
    ax.set_xticklabels([str(k) for k in steps])
    ax.set_xlabel("iterative-sampling steps K")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.suptitle(
    "Figure 4: single-conditional log-likelihood (eq 11 bound, test) vs iterative-sampling steps",
    fontsize=10,
  )
  fig.tight_layout()
  return fig


def draw_figure5(
  panels_by_model: Dict[str, Tuple[np.ndarray, np.ndarray, str]], classes: np.ndarray
):
  """Each model's two latents, coloured by the examples' classes (ints 0-9)."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, axes = plt.subplots(
    len(panels_by_model),
    2,
    figsize=(10, 4.6 * len(panels_by_model)),
    squeeze=False,
    gridspec_kw={"wspace": 0.3, "hspace": 0.35},
  )
  for r, (title, (joint, alone, how)) in enumerate(panels_by_model.items()):
    both = np.concatenate([joint, alone])
    low, high = both.min(0) - 0.2, both.max(0) + 0.2  # one scale per row: a collapse shows
    for ax, z, name in ((axes[r, 0], joint, "z ~ q(z|x,w)"), (axes[r, 1], alone, how)):
      sc = ax.scatter(z[:, 0], z[:, 1], c=classes, cmap="tab10", s=2, vmin=-0.5, vmax=9.5)
      ax.set_title(f"{title}: {name}", fontsize=10)
      ax.set_xlim(low[0], high[0]), ax.set_ylim(low[1], high[1])
      ax.set_xlabel("z1"), ax.set_ylabel("z2")
    fig.colorbar(sc, ax=axes[r, :].tolist(), ticks=range(10), label="class")
  fig.suptitle(f"Figure 5: 2-D latent of {len(classes)} test examples", fontsize=11)
  return fig


def save_figure(fig, path: str, writer=None, tag: str = "") -> bytes:
  """Writes the figure as PNG (and the same image to TensorBoard when a writer is given);
  returns the PNG bytes."""
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
  write_whole(path, buf.getvalue(), OUTPUT_KEPT)
  if writer is not None:
    with writer.as_default(step=0):
      tf.summary.image(tag, tf.image.decode_png(buf.getvalue(), channels=4)[tf.newaxis])
  return buf.getvalue()


# --- Figures 6-9: faces and their attributes (any CelebA-family run) ------------------------
# Figure 6: faces generated from the attributes of test faces, one row per number of
#   iterative-sampling steps (JMVAE), with a first row from q(z|w) where the model has one.
# Figure 7: single-conditional log-likelihood against the number of steps (Figure 4's values
#   for any pair of modalities).
# Figure 8a: the average face p(x|z_mean), z_mean the mean of q(z|w), and random faces
#   z_mean + sigma * eps, eps ~ N(0, zeta I), for base attributes with one attribute set to
#   +-2; 8b: a PCA of those latents coloured by the attribute set.
# Figure 9: bi-directional editing (jmvae_tf/inspection/editing.py): x + x'_mean - x_mean.

FIGURE8_VALUE = 2.0  # the paper sets the chosen attribute to 2 (or -2 for "not")
FIGURE8_ZETA = 0.6


def face_modalities(model) -> Tuple[str, str]:
  """(image modality, attribute modality) of a faces-and-attributes model."""
  from jmvae_tf.inspection import editing  # pylint: disable=g-import-not-at-top

  return editing.face_modalities(model)


def figure6_rows(
  model, attributes: Batch, steps: Sequence[int], seed: int
) -> Tuple[List[str], List[np.ndarray]]:
  """Figure 6: Figure 3's rows with the image missing and the attributes given
  (`attributes`: {attribute modality: [B, A]}, e.g. those of B test faces)."""
  image, _ = face_modalities(model)
  return figure3_rows(model, attributes, image, steps, seed)


def figure7_curves(
  models: Dict[str, object],
  dataset: Iterable[Batch],
  steps: Sequence[int],
  num_samples: int,
  seed: int,
  directions: Sequence[Tuple[str, Tuple[str, ...], str]],
) -> Dict[str, Dict[str, List[float]]]:
  """Figure 7: {direction name: {model title: mean eq 11 estimate at each step count}} for
  `directions` = [(target, given, name)]; Figure 4's computation (batch i draws from
  (seed, i)) for any modalities. A model that needs no iterative sampling is a flat line."""
  if iter(dataset) is dataset:
    raise ValueError(
      "the log-likelihood curves read the data set several times: pass a list or a "
      "tf.data.Dataset, not an iterator"
    )
  curves: Dict[str, Dict[str, List[float]]] = {}
  for title, model in models.items():
    for target, given, name in directions:
      imputes = model.uses_iterative_sampling(given)
      values = []
      for k in steps if imputes else steps[:1]:
        total, count = 0.0, 0
        for i, batch in enumerate(dataset):
          v = estimators.conditional_log_likelihood(
            model, batch, target, given, num_samples, k, seed=(seed, i)
          )
          total, count = total + float(tf.reduce_sum(v)), count + int(v.shape[0])
        if not count:
          raise ValueError("the log-likelihood curves: the data set is empty")
        values.append(total / count)
      curves.setdefault(name, {})[title] = values if imputes else values * len(steps)
  return curves


def face_directions(model) -> List[Direction]:
  """Figure 7's directions for a faces-and-attributes model: log p(x~|w) and log p(w~|x)."""
  face_modalities(model)  # an EditError for another model
  return single_conditionals(model)


def figure8_faces(
  model,
  base_attributes: np.ndarray,
  chosen: Sequence[Tuple[str, int, float]],
  num_random: int,
  seed: int,
  zeta: float = FIGURE8_ZETA,
  num_steps: int = 0,
) -> List[Dict[str, np.ndarray]]:
  """Figure 8a's values: for each (name, column, value) in `chosen`, w = base_attributes
  with that column set to value (the paper: 2 or -2), z_mean and sigma^2 = the mean and
  variance of z given w (JMVAE-kl: q(z|w); JMVAE: after num_steps of iterative sampling),
  the average face = the mean of p(x|z_mean), and num_random faces from z = z_mean +
  sigma * eps, eps ~ N(0, zeta I) (zeta a variance; the paper's 0.6). Every attribute gets
  the same eps, so the columns differ only by the attribute."""
  if zeta < 0 or num_random < 0:
    raise ValueError(f"zeta and num_random must be >= 0, got {zeta}, {num_random}")
  image, attributes = face_modalities(model)
  base = np.asarray(base_attributes, np.float32).reshape(-1)
  eps = tf.random.stateless_normal(
    [num_random, model.latent_dim], tf.constant([seed, 8], tf.int64)
  ) * np.sqrt(zeta)
  out = []
  for name, column, value in chosen:
    w = base.copy()
    w[column] = value
    z_mean, variance = model.posterior(
      {attributes: tf.constant(w[np.newaxis])}, [attributes], num_steps=num_steps
    )
    z_random = z_mean + tf.sqrt(variance) * eps
    out.append(
      {
        "name": name,
        "value": float(value),
        "w": w,
        "z_mean": z_mean.numpy()[0],
        "sigma": np.sqrt(variance.numpy()[0]),
        "z_random": z_random.numpy(),
        "average": model.decode(z_mean, {}, names=[image])[image].mean().numpy()[0],
        "random": model.decode(z_random, {}, names=[image])[image].mean().numpy(),
      }
    )
  return out


def pca_2d(points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """(points projected on their first two principal components [N, 2], the components
  [2, D]); the signs are fixed so that each component's largest entry is positive."""
  points = np.asarray(points, np.float64)
  centred = points - points.mean(0)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  components = vt[:2]
  signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(1)])
  components = components * signs[:, np.newaxis]
  return centred @ components.T, components


def figure9_grid(
  model, images: np.ndarray, edits: Sequence, num_steps: int = 0
) -> Tuple[List[str], np.ndarray]:
  """Figure 9: (column names, [faces, 1 + len(edits), H, W, C]): each face, then for each
  edit (an editing.Edit) x + x'_mean - x_mean with only that attribute edited."""
  from jmvae_tf.inspection import editing  # pylint: disable=g-import-not-at-top

  images = np.asarray(images, np.float32)
  columns = [images] + [
    editing.bidirectional_edit(model, images, [edit], num_steps)["edited"] for edit in edits
  ]
  return ["input"] + [edit.label for edit in edits], np.stack(columns, axis=1)


def draw_face_grid(
  grid: np.ndarray,
  row_names: Sequence[str],
  column_names: Sequence[str],
  title: str,
  value_range: Tuple[float, float],
):
  """grid [rows, columns, H, W, C] of faces with values in `value_range` (the image
  modality's likelihood's picture_range; CelebA's: [-1, 1])."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  rows, cols = grid.shape[:2]
  fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.15), squeeze=False)
  for r in range(rows):
    for c in range(cols):
      ax = axes[r, c]
      ax.imshow(to_unit(grid[r, c], value_range))
      ax.set_xticks([]), ax.set_yticks([])
      if r == 0 and column_names:
        ax.set_title(str(column_names[c]), fontsize=7)
      if c == 0 and row_names:
        ax.set_ylabel(row_names[r], fontsize=7, rotation=0, ha="right", va="center")
  fig.suptitle(title, fontsize=10)
  return fig


def draw_figure6(
  faces: np.ndarray,
  rows: Sequence[np.ndarray],
  row_names: Sequence[str],
  title: str,
  value_range: Tuple[float, float],
):
  """The test faces on top, then one row of generated faces per row name."""
  grid = np.stack([np.asarray(faces)] + [np.asarray(r) for r in rows], axis=0)
  return draw_face_grid(grid, ["test face"] + list(row_names), [], title, value_range)


def draw_figure7(curves: Dict[str, Dict[str, List[float]]], steps: Sequence[int]):
  fig = draw_figure4(curves, steps)
  fig.suptitle(
    "Figure 7: single-conditional log-likelihood (eq 11 bound, test) vs iterative-sampling steps",
    fontsize=10,
  )
  return fig


def draw_figure8a(
  panels: Sequence[Dict[str, np.ndarray]], title: str, value_range: Tuple[float, float]
):
  """One column per chosen attribute: its average face on top, the random faces below."""
  grid = np.stack([np.concatenate([p["average"][np.newaxis], p["random"]]) for p in panels], 1)
  names = [f"{'+' if p['value'] > 0 else '-'}{p['name']}" for p in panels]
  row_names = ["average"] + [f"random {i + 1}" for i in range(grid.shape[0] - 1)]
  return draw_face_grid(grid, row_names, names, title, value_range)


def draw_figure8b(panels: Sequence[Dict[str, np.ndarray]], title: str):
  """The random latents of every attribute (and their z_mean, large) on two principal axes."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  points = np.concatenate(
    [np.concatenate([p["z_mean"][np.newaxis], p["z_random"]]) for p in panels]
  )
  projected, _ = pca_2d(points)
  fig, ax = plt.subplots(figsize=(5.5, 4.5))
  start = 0
  for i, p in enumerate(panels):
    n = 1 + len(p["z_random"])
    part = projected[start : start + n]
    start += n
    label = f"{'+' if p['value'] > 0 else '-'}{p['name']}"
    colour = plt.get_cmap("tab10")(i % 10)
    ax.scatter(part[1:, 0], part[1:, 1], s=10, color=colour, label=label)
    ax.scatter(part[:1, 0], part[:1, 1], s=120, color=colour, marker="*", edgecolor="black")
  ax.set_xlabel("PC 1"), ax.set_ylabel("PC 2")
  ax.legend(fontsize=7)
  ax.set_title(title, fontsize=10)
  return fig
