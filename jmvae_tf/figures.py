"""The paper's MNIST figures 3, 4 and 5: their values, computed through the models'
inference API, and their drawings (matplotlib, imported only when drawing).

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

from jmvae_tf import gaussian
from jmvae_tf.evaluation import estimators
from jmvae_tf.models import iterative_impute
from jmvae_tf.models.base import split_seed

Batch = Dict[str, tf.Tensor]
DIRECTIONS = (("image", ("label",), "log p(x~|w)"), ("label", ("image",), "log p(w~|x)"))


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
  for i, k in enumerate(steps):
    state = iterative_impute(model, given, missing, k, chain_seed)
    mean, variance = model.posterior(state, names)
    z = gaussian.sample(mean, variance, tf.random.experimental.stateless_fold_in(chain_seed, i))
    rows.append(model.decode(z, state, names=[missing])[missing].mean().numpy())
    row_names.append(f"{k} step{'s' if k != 1 else ''}")
  return row_names, rows


def figure4_curves(
  models: Dict[str, object],
  dataset: Iterable[Batch],
  steps: Sequence[int],
  num_samples: int,
  seed: int,
) -> Dict[str, Dict[str, List[float]]]:
  """{direction: {model title: mean eq 11 estimate at each step count}}; batch i draws from
  the seed (seed, i), as `evaluation.table.evaluate` does for one column. `dataset` is read
  once per model, direction and step count: a list or tf.data.Dataset, not an iterator."""
  if iter(dataset) is dataset:
    raise ValueError(
      "figure4_curves reads the data set several times: pass a list or a "
      "tf.data.Dataset, not an iterator"
    )
  curves = {}
  for title, model in models.items():
    for target, given, name in DIRECTIONS:
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
          raise ValueError("figure4_curves: the data set is empty")
        values.append(total / count)
      curves.setdefault(name, {})[title] = values if imputes else values * len(steps)
  return curves


def figure5_latents(
  model, dataset: Iterable[Batch], seed: int, given: Sequence[str] = ("label",)
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
  missing = [m for m in model.modality_names if m not in given]
  if model.uses_iterative_sampling(given):
    how = f"q(z|{','.join(f'{m}=0' for m in missing)},{','.join(given)})"
  else:
    how = f"q(z|{','.join(given)})"
  return np.concatenate(joint), np.concatenate(alone), how


# --- drawings ------------------------------------------------------------------------------


def as_picture(x: np.ndarray) -> np.ndarray:
  """An image for imshow: a trailing channel of 1 dropped, [-1, 1] data mapped to [0, 1]."""
  x = np.asarray(x)
  if x.shape[-1] == 1:
    x = x[..., 0]
  return (x + 1) / 2 if x.min() < 0 else x


def draw_figure3(rows: Sequence[np.ndarray], row_names: Sequence[str], column_names, title: str):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  cols = len(column_names)
  fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.9, len(rows) * 0.95), squeeze=False)
  for r, (row, name) in enumerate(zip(rows, row_names)):
    for c in range(cols):
      ax = axes[r, c]
      ax.imshow(as_picture(row[c]), cmap="gray", vmin=0, vmax=1)
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
  panels_by_model: Dict[str, Tuple[np.ndarray, np.ndarray, str]], labels: np.ndarray
):
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
    for ax, z, name in ((axes[r, 0], joint, "q(z|x,w)"), (axes[r, 1], alone, how)):
      sc = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=2, vmin=-0.5, vmax=9.5)
      ax.set_title(f"{title}: z ~ {name}", fontsize=10)
      ax.set_xlim(low[0], high[0]), ax.set_ylim(low[1], high[1])
      ax.set_xlabel("z1"), ax.set_ylabel("z2")
    fig.colorbar(sc, ax=axes[r, :].tolist(), ticks=range(10), label="label")
  fig.suptitle(f"Figure 5: 2-D latent of {len(labels)} test images", fontsize=11)
  return fig


def save_figure(fig, path: str, writer=None, tag: str = "") -> bytes:
  """Writes the figure as PNG (and the same image to TensorBoard when a writer is given);
  returns the PNG bytes."""
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
  with open(path, "wb") as f:
    f.write(buf.getvalue())
  if writer is not None:
    with writer.as_default(step=0):
      tf.summary.image(tag, tf.image.decode_png(buf.getvalue(), channels=4)[tf.newaxis])
  return buf.getvalue()
