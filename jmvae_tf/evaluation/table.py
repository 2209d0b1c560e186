"""Table 1 of the paper: its columns, its numbers, and the evaluation of one model over a data set.

A column is log p(target~ | given): the single-conditional log p(x~|w), log p(w~|x) and the
multi-conditional log p(x~|w,x), log p(w~|x,w). JMVAE-family models fill all four; CVAE and
CMMA model one direction each, so one of their rows combines an image|label and a label|image model.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import tensorflow as tf
import tf_keras as keras

from jmvae_tf.evaluation import estimators

# The paper's symbols for the MNIST modalities.
SYMBOLS = {"image": "x", "label": "w"}


@dataclasses.dataclass(frozen=True)
class Column:
  """log p(target~ | given)."""

  target: str
  given: Tuple[str, ...]

  @property
  def key(self) -> str:
    return f"{self.target}|{','.join(sorted(self.given))}"

  @property
  def multi(self) -> bool:
    return self.target in self.given

  def title(self, prefix: str = "") -> str:
    sym = lambda n: SYMBOLS.get(n, n)
    # The paper writes the target's own modality last: log p(x~|w,x).
    given = sorted(self.given, key=lambda n: (n == self.target, n))
    return f"{prefix}log p({sym(self.target)}~|{','.join(sym(g) for g in given)})"


TABLE1_COLUMNS = (Column("image", ("label",)), Column("label", ("image",)),
                  Column("image", ("image", "label")), Column("label", ("image", "label")))
JOINT_KEY = "image,label"  # the IWAE joint log p(x,w)

MODEL_TITLES = {"cvae": "CVAE", "cmma": "CMMA", "jmvae": "JMVAE", "jmvae_kl": "JMVAE-kl",
                "hierarchical_jmvae": "Hierarchical JMVAE"}
ROW_ORDER = ("cvae", "cmma", "jmvae", "jmvae_kl", "hierarchical_jmvae")

# Table 1 of the paper (MNIST, test set), by row and column key.
PAPER_TABLE1 = {
    "cvae": (-448.8, -5.293, -70.42, -5.304),
    "cmma": (-451.1, -0.2971, -69.89, -0.002574),
    "jmvae": (-747.1, -0.2286, -69.57, -0.2026),
    "jmvae_kl": (-422.35, -0.2628, -76.94, -0.1874),
    "hierarchical_jmvae": (-475.5, -2.640, -196.9, -0.4456),
}
PAPER_TABLE1 = {row: dict(zip((c.key for c in TABLE1_COLUMNS), vals)) for row, vals in PAPER_TABLE1.items()}


def _supports(model, column: Column) -> bool:
  try:
    model.check_given(column.given)
  except ValueError:
    return False
  return column.target in model.generated_modalities


def columns_for(model, columns: Sequence[Column] = TABLE1_COLUMNS) -> List[Column]:
  """The columns this model can fill: all for the JMVAE family, its own direction for CVAE/CMMA."""
  return [c for c in columns if _supports(model, c)]


def iwae_keys_for(model, columns: Sequence[Column]) -> List[str]:
  """IWAE quantities: the single conditionals, and the joint log p(x,w) where the model has one."""
  keys = [c.key for c in columns if not c.multi]
  if not model.conditioning_modalities:
    keys.append(",".join(sorted(model.modality_names)))
  return keys


def describe_estimator(model, num_samples: int, iterations: int,
                       columns: Sequence[Column] = TABLE1_COLUMNS) -> str:
  """One line saying how the single-conditional z is drawn, with N and K."""
  how = "; ".join(sorted({model.describe_inference(c.given, iterations)
                          for c in columns_for(model, columns) if not c.multi}))
  return (f"eq 11 lower bound, mean of log p(target~|z) over N={num_samples} samples; "
          f"single-conditional: {how}")


def _progress(total: int, enabled: bool):
  return keras.utils.Progbar(total, unit_name="batch") if enabled else None


def _num_batches(dataset: tf.data.Dataset) -> int:
  n = int(dataset.cardinality())
  return n if n >= 0 else None


def evaluate(model, dataset: tf.data.Dataset, columns: Optional[Sequence[Column]] = None, num_samples: int = 10,
             iterations: int = 100, iwae_samples: int = 0, iwae_dataset: Optional[tf.data.Dataset] = None,
             seed: int = 0, progress: bool = True) -> Dict:
  """Mean over `dataset` of each column's eq 11 estimate (and, if iwae_samples > 0, of the IWAE ones).

  Batch i draws from the stateless seed (seed, i): the numbers are reproducible for a given
  seed and batch size. `iwae_dataset` (default `dataset`) lets IWAE use smaller batches.
  """
  columns = list(columns if columns is not None else columns_for(model))
  start = time.perf_counter()
  totals = {c.key: 0.0 for c in columns}
  count = 0
  bar = _progress(_num_batches(dataset), progress)
  for i, batch in enumerate(dataset):
    for j, column in enumerate(columns):
      values = estimators.conditional_log_likelihood(model, batch, column.target, column.given, num_samples,
                                                     iterations, seed=(seed * 1000 + j, i))
      totals[column.key] += float(tf.reduce_sum(values))
    count += int(tf.shape(batch[columns[0].target])[0])
    if bar is not None:
      bar.update(i + 1)
  result = {"num_examples": count, "num_samples": num_samples, "iterations": iterations,
            "values": {k: v / count for k, v in totals.items()},
            "seconds": time.perf_counter() - start}
  if iwae_samples > 0:
    start = time.perf_counter()
    result["iwae"] = evaluate_iwae(model, iwae_dataset or dataset, columns, iwae_samples, iterations, seed, progress)
    result["iwae_samples"] = iwae_samples
    result["iwae_seconds"] = time.perf_counter() - start
  return result


def evaluate_iwae(model, dataset, columns, num_samples: int, iterations: int, seed: int = 0,
                  progress: bool = True) -> Dict[str, float]:
  """Means of the IWAE estimates (k = num_samples) of the single conditionals and the joint."""
  keys = iwae_keys_for(model, columns)
  by_key = {c.key: c for c in columns}
  totals = {k: 0.0 for k in keys}
  count = 0
  bar = _progress(_num_batches(dataset), progress)
  for i, batch in enumerate(dataset):
    for j, key in enumerate(keys):
      s = (seed * 1000 + 500 + j, i)
      if key in by_key:
        values = estimators.iwae_conditional_log_likelihood(model, batch, by_key[key].target, by_key[key].given,
                                                            num_samples, iterations, seed=s)
      else:
        values = estimators.iwae_log_likelihood(model, batch, None, num_samples, iterations, seed=s)
      totals[key] += float(tf.reduce_sum(values))
    count += int(tf.shape(next(iter(batch.values())))[0])
    if bar is not None:
      bar.update(i + 1)
  return {k: v / count for k, v in totals.items()}


# --- the table ---------------------------------------------------------------------------

def merge_rows(records: Iterable[Dict]) -> Dict[str, Dict]:
  """Rows by model type; CVAE/CMMA records of both directions fill one row.

  Raises ValueError when two records fill the same cell.
  """
  rows: Dict[str, Dict] = {}
  for rec in records:
    row = rows.setdefault(rec["model"], {"values": {}, "iwae": {}, "sources": {}})
    for part in ("values", "iwae"):
      for key, value in rec.get(part, {}).items():
        if key in row[part]:
          raise ValueError(f"two model dirs give {MODEL_TITLES.get(rec['model'], rec['model'])} "
                           f"{part} {key}: {row['sources'][(part, key)]} and {rec['model_dir']}")
        row[part][key] = value
        row["sources"][(part, key)] = rec["model_dir"]
  return rows


def _fmt(v: Optional[float]) -> str:
  if v is None:
    return "—"
  return f"{v:.4g}" if abs(v) < 100 else f"{v:.1f}"


def markdown_table(records: Sequence[Dict], with_paper: bool = True) -> str:
  """Table 1 as Markdown: ours, with the paper's number in parentheses; IWAE below if any."""
  rows = merge_rows(records)
  order = [r for r in ROW_ORDER if r in rows] + sorted(r for r in rows if r not in ROW_ORDER)
  esc = lambda t: t.replace("|", "\\|")  # a bar inside a cell would end it
  head = "| model | " + " | ".join(esc(c.title()) for c in TABLE1_COLUMNS) + " |"
  lines = [head, "|---" * (len(TABLE1_COLUMNS) + 1) + "|"]
  for r in order:
    cells = []
    for c in TABLE1_COLUMNS:
      ours = rows[r]["values"].get(c.key)
      paper = PAPER_TABLE1.get(r, {}).get(c.key)
      cells.append(_fmt(ours) + (f" ({_fmt(paper)})" if with_paper and paper is not None else ""))
    lines.append(f"| {MODEL_TITLES.get(r, r)} | " + " | ".join(cells) + " |")
  text = "\n".join(lines)
  if with_paper:
    text += "\n\nOurs, with the paper's Table 1 in parentheses (higher is better)."
  if any(rows[r]["iwae"] for r in order):
    iw_cols = [c for c in TABLE1_COLUMNS if not c.multi]
    lines = ["| model | " + " | ".join(esc(c.title("IWAE ")) for c in iw_cols) + " | IWAE log p(x,w) |",
             "|---" * (len(iw_cols) + 2) + "|"]
    for r in order:
      iw = rows[r]["iwae"]
      if iw:
        lines.append(f"| {MODEL_TITLES.get(r, r)} | " + " | ".join(_fmt(iw.get(c.key)) for c in iw_cols)
                     + f" | {_fmt(iw.get(JOINT_KEY))} |")
    text += "\n\n" + "\n".join(lines)
  return text
