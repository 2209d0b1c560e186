"""The paper's Tables 1 and 2: their columns, their numbers, and the evaluation of one model over
a data set.

A column is log p(target~ | given): the single-conditional log p(x~|w), log p(w~|x) and the
multi-conditional log p(x~|w,x), log p(w~|x,w). JMVAE-family models fill all four; CVAE and
CMMA model one direction each, so one of their rows combines an x|w and a w|x model.

Which table a run belongs to is a property of its data set (`table_for(config.dataset)`): Table 1
for MNIST (image x, label w), Table 2 for CelebA (image x, attributes w). A table definition
carries its columns, the paper's numbers, the paper's K (rounds of iterative sampling) and, for
CelebA, the attributes predicted from the image whose accuracy is reported beside the table.
Nothing here looks at a model's class: only the inference API (`check_given`,
`generated_modalities`, `conditioning_modalities`, `describe_inference`, `posterior`, `decode`).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

from jmvae_tf.core.graphs import compiled
from jmvae_tf.evaluation import estimators
from jmvae_tf.models import registry

# More columns than this (three modalities have 12) are a row each instead of a column each.
WIDE_COLUMNS = 6
# The paper's symbols for the modalities of a two-modality data set, by position: x the first
# (the image), w the second (the label or the attributes).
PAPER_SYMBOLS = ("x", "w")


def paper_symbols(modality_names: Sequence[str]) -> Dict[str, str]:
  """{modality name: the paper's symbol} for two modalities; the names themselves for more."""
  names = list(modality_names)
  symbols = PAPER_SYMBOLS if len(names) == len(PAPER_SYMBOLS) else names
  return dict(zip(names, symbols))


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

  def title(self, prefix: str = "", symbols: Optional[Mapping[str, str]] = None) -> str:
    sym = lambda n: (symbols or {}).get(n, n)
    # The paper writes the target's own modality last: log p(x~|w,x).
    given = sorted(self.given, key=lambda n: (n == self.target, n))
    return f"{prefix}log p({sym(self.target)}~|{','.join(sym(g) for g in given)})"

  def renamed(self, names: Mapping[str, str]) -> "Column":
    return Column(names[self.target], tuple(names[g] for g in self.given))


def conditional_columns(modality_names: Sequence[str]) -> Tuple[Column, ...]:
  """Every conditional of each modality: given each non-empty subset of the others (single
  conditionals, smallest subsets first), then given all of them, itself included (the
  multi-conditional). For x and w: the paper's x|w, w|x, x|w,x, w|x,w."""
  names = list(modality_names)
  singles = [
    Column(target, subset)
    for target in names
    for r in range(1, len(names))
    for subset in itertools.combinations([n for n in names if n != target], r)
  ]
  return tuple(singles + [Column(target, tuple(names)) for target in names])


@dataclasses.dataclass(frozen=True)
class Accuracy:
  """Accuracy of the sign of the mean of p(target|z), z ~ the posterior given `given`
  (for {-1, 1} vectors such as CelebA's attributes), against the majority class."""

  target: str
  given: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class TableDefinition:
  """One of the paper's tables: what its columns are and what the paper reported. Written in
  the paper's symbols (x, w); `bind` gives it for a data set's modality names."""

  name: str  # "Table 1"
  stem: str  # file stem of the whole table: table1.json / table1.md
  symbols: Mapping[str, str]  # modality -> the paper's symbol, x first
  columns: Tuple[Column, ...]
  paper: Mapping[str, Mapping[str, float]]  # row (model name) -> column key -> value
  iterations: int  # the paper's K for the single conditionals of JMVAE / hierarchical JMVAE
  accuracy: Optional[Accuracy] = None

  @property
  def joint_key(self) -> str:
    """The key of the IWAE joint log p(x,w)."""
    return ",".join(sorted(self.symbols))

  def title(self, column: Column, prefix: str = "") -> str:
    if len(self.symbols) > 2 and set(column.given) == set(self.symbols):
      return f"{prefix}log p({self.symbols.get(column.target, column.target)}~|all)"
    return column.title(prefix, self.symbols)

  def bind(self, modality_names: Sequence[str]) -> "TableDefinition":
    """This table for modalities named `modality_names`, in the order of its symbols."""
    if len(modality_names) != len(self.symbols):
      raise ValueError(
        f"{self.name} has {len(self.symbols)} modalities ({', '.join(self.symbols.values())}); "
        f"got {list(modality_names)}"
      )
    names = dict(zip(self.symbols, modality_names))
    column_keys = {c.key: c.renamed(names).key for c in self.columns}
    return dataclasses.replace(
      self,
      symbols={names[s]: sym for s, sym in self.symbols.items()},
      columns=tuple(c.renamed(names) for c in self.columns),
      paper={
        row: {column_keys[k]: v for k, v in values.items()} for row, values in self.paper.items()
      },
      accuracy=self.accuracy
      and Accuracy(names[self.accuracy.target], tuple(names[g] for g in self.accuracy.given)),
    )


def _paper_numbers(columns: Sequence[Column], rows: Mapping[str, Sequence[float]]):
  return {row: dict(zip((c.key for c in columns), vals)) for row, vals in rows.items()}


PAPER_COLUMNS = conditional_columns(PAPER_SYMBOLS)

TABLE1 = TableDefinition(
  "Table 1",
  "table1",
  {s: s for s in PAPER_SYMBOLS},
  PAPER_COLUMNS,
  # Table 1 of the paper (MNIST, test set), by row and column key.
  _paper_numbers(
    PAPER_COLUMNS,
    {
      "cvae": (-448.8, -5.293, -70.42, -5.304),
      "cmma": (-451.1, -0.2971, -69.89, -0.002574),
      "jmvae": (-747.1, -0.2286, -69.57, -0.2026),
      "jmvae_kl": (-422.35, -0.2628, -76.94, -0.1874),
      "hierarchical_jmvae": (-475.5, -2.640, -196.9, -0.4456),
    },
  ),
  iterations=100,
)
# Fashion-MNIST has Table 1's layout; the paper reported no numbers for it.
TABLE1_FASHION = dataclasses.replace(TABLE1, paper={})
TABLE2 = TableDefinition(
  "Table 2",
  "table2",
  {s: s for s in PAPER_SYMBOLS},
  PAPER_COLUMNS,
  # Table 2 of the paper (CelebA, test set).
  _paper_numbers(
    PAPER_COLUMNS,
    {
      "cvae": (-6825, -44.28, -4031, -44.28),
      "cmma": (-6920, -44.57, -4026, -38.74),
      "jmvae": (-48763, -43.97, -4026, -43.43),
      "jmvae_kl": (-6852, -44.13, -4089, -43.83),
      "hierarchical_jmvae": (-7355, -47.61, -4901, -47.32),
    },
  ),
  iterations=40,
  accuracy=Accuracy("w", ("x",)),  # the attributes predicted from the image
)
TABLES = {"mnist": TABLE1, "fashion_mnist": TABLE1_FASHION, "celeb_a": TABLE2}


# K of iterative sampling for a data set the paper has no table of: Table 1's.
DEFAULT_ITERATIONS = TABLE1.iterations


def table_for(dataset: str, modality_names: Sequence[str], paper: bool = True) -> TableDefinition:
  """The table a run on `dataset` (its config.dataset) belongs to, for its modalities: the
  paper's where it has one (and `paper`: False where the run's modalities are not the paper's,
  e.g. captions instead of labels), else every conditional of the modalities, without paper
  numbers."""
  if paper and dataset in TABLES:
    return TABLES[dataset].bind(modality_names)
  return TableDefinition(
    f"conditional log-likelihoods on {dataset}",
    f"table_{dataset}",
    paper_symbols(modality_names),
    conditional_columns(modality_names),
    {},
    iterations=DEFAULT_ITERATIONS,
  )


def _can_generate(model, target: str, given: Sequence[str]) -> bool:
  return model.can_infer(given) and target in model.generated_modalities


def columns_for(model, columns: Optional[Sequence[Column]] = None) -> List[Column]:
  """The columns this model can fill: all for the JMVAE family, its own direction for CVAE/CMMA.

  `columns` defaults to every conditional of the model's modalities (conditional_columns)."""
  columns = conditional_columns(model.modality_names) if columns is None else columns
  return [c for c in columns if _can_generate(model, c.target, c.given)]


def iwae_keys_for(model, columns: Sequence[Column]) -> List[str]:
  """IWAE quantities: the single conditionals, and the joint log p(x,w) where the model has one."""
  keys = [c.key for c in columns if not c.multi]
  if not model.conditioning_modalities:
    keys.append(",".join(sorted(model.modality_names)))
  return keys


def describe_estimator(
  model, num_samples: int, iterations: int, columns: Optional[Sequence[Column]] = None
) -> str:
  """One line saying how the single-conditional z is drawn, with N and K."""
  how = "; ".join(
    sorted(
      {
        model.describe_inference(c.given, iterations)
        for c in columns_for(model, columns)
        if not c.multi
      }
    )
  )
  return (
    f"eq 11 lower bound, mean of log p(target~|z) over N={num_samples} samples; "
    f"single-conditional: {how}"
  )


def _progress(total: int, enabled: bool):
  return keras.utils.Progbar(total, unit_name="batch") if enabled else None


def _num_batches(dataset: tf.data.Dataset) -> int:
  n = int(dataset.cardinality())
  return n if n >= 0 else None


def evaluate(
  model,
  dataset: tf.data.Dataset,
  columns: Optional[Sequence[Column]] = None,
  num_samples: int = 10,
  iterations: int = 100,
  iwae_samples: int = 0,
  iwae_dataset: Optional[tf.data.Dataset] = None,
  seed: int = 0,
  progress: bool = True,
) -> Dict:
  """Mean over `dataset` of each column's eq 11 estimate (and, if iwae_samples > 0, of the
  IWAE ones).

  Batch i draws from the stateless seed (seed, i): the numbers are reproducible for a given
  seed and batch size. `iwae_dataset` (default `dataset`) lets IWAE use smaller batches.
  `columns` are filtered to those the model supports (default: every table's).
  """
  columns = columns_for(model, columns)
  if not columns:
    raise ValueError(
      f"{model.name} fills none of the columns (its modalities: {model.modality_names})"
    )
  start = time.perf_counter()
  totals = {c.key: 0.0 for c in columns}
  specs = {m.name: m for m in model.modality_specs}
  # Text targets: their tokens too (padding excluded), for the per-token figure.
  tokens = {c.key: 0.0 for c in columns if specs[c.target].likelihood.reads_text}
  count = 0
  bar = _progress(_num_batches(dataset), progress)
  for i, batch in enumerate(dataset):
    for j, column in enumerate(columns):
      values = estimators.conditional_log_likelihood(
        model,
        batch,
        column.target,
        column.given,
        num_samples,
        iterations,
        seed=(seed * 1000 + j, i),
      )
      totals[column.key] += float(tf.reduce_sum(values))
      if column.key in tokens:
        counted = specs[column.target].likelihood.count(batch[column.target])
        tokens[column.key] += float(tf.reduce_sum(counted))
    count += int(tf.shape(batch[columns[0].target])[0])
    if bar is not None:
      bar.update(i + 1)
  result = {
    "num_examples": count,
    "num_samples": num_samples,
    "iterations": iterations,
    "values": {k: v / count for k, v in totals.items()},
    "seconds": time.perf_counter() - start,
  }
  if tokens:  # the summed log-likelihood of the test captions over their tokens
    result["per_token"] = {k: totals[k] / n for k, n in tokens.items()}
  if iwae_samples > 0:
    start = time.perf_counter()
    result["iwae"] = evaluate_iwae(
      model, iwae_dataset or dataset, columns, iwae_samples, iterations, seed, progress
    )
    result["iwae_samples"] = iwae_samples
    result["iwae_seconds"] = time.perf_counter() - start
  return result


def evaluate_iwae(
  model, dataset, columns, num_samples: int, iterations: int, seed: int = 0, progress: bool = True
) -> Dict[str, float]:
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
        values = estimators.iwae_conditional_log_likelihood(
          model, batch, by_key[key].target, by_key[key].given, num_samples, iterations, seed=s
        )
      else:
        values = estimators.iwae_log_likelihood(model, batch, None, num_samples, iterations, seed=s)
      totals[key] += float(tf.reduce_sum(values))
    count += int(tf.shape(next(iter(batch.values())))[0])
    if bar is not None:
      bar.update(i + 1)
  return {k: v / count for k, v in totals.items()}


# --- attributes predicted from the image -------------------------------------------------


def supports_accuracy(model, accuracy: Optional[Accuracy]) -> bool:
  return accuracy is not None and _can_generate(model, accuracy.target, accuracy.given)


def generated_mean(model, batch, target, given, iterations, seed):
  """model.generated_mean, as a function `compiled` can make a graph of per pair."""
  return model.generated_mean(batch, target, given, seed, iterations)


def _predicted_positive(model, batch, target, given, iterations, seed):
  """sign(mean of p(target|z)) > 0, z ~ the posterior given `given` only ([B, size] bool)."""
  prediction = generated_mean(model, batch, target, given, iterations, seed)
  return tf.reshape(prediction, [tf.shape(prediction)[0], -1]) > 0


def attribute_accuracy(
  model,
  dataset: tf.data.Dataset,
  accuracy: Accuracy,
  iterations: int = 0,
  names: Optional[Sequence[str]] = None,
  seed: int = 0,
) -> Dict:
  """Per-attribute accuracy of `accuracy.target` predicted from `accuracy.given` (the model
  sees only those: the test attributes never reach it), and the majority-class baseline:
  always predicting each attribute's more frequent test value. Batch i samples with the
  stateless seed (seed * 1000 + 900, i)."""
  given = model.check_given(accuracy.given)
  correct = positives = None
  count = 0
  for i, batch in enumerate(dataset):
    seen = {name: batch[name] for name in given}
    predicted = compiled(_predicted_positive, accuracy.target, given)(
      model,
      seen,
      accuracy.target,
      given,
      tf.cast(iterations, tf.int64),
      tf.constant([seed * 1000 + 900, i], tf.int64),
    ).numpy()
    truth = np.reshape(batch[accuracy.target].numpy(), predicted.shape) > 0
    batch_correct, batch_positives = (predicted == truth).sum(0), truth.sum(0)
    correct = batch_correct if correct is None else correct + batch_correct
    positives = batch_positives if positives is None else positives + batch_positives
    count += len(truth)
  if not count:
    raise ValueError("attribute_accuracy: no test examples")
  if names is None or len(names) != len(correct):
    names = [f"{accuracy.target}_{k}" for k in range(len(correct))]
  acc = correct / count
  majority = np.maximum(positives, count - positives) / count
  return {
    "target": accuracy.target,
    "given": ",".join(given),
    "num_examples": count,
    "inference": model.describe_inference(given, iterations),
    "mean_accuracy": float(acc.mean()),
    "mean_majority": float(majority.mean()),
    "per_attribute": {
      name: {"accuracy": float(a), "majority": float(m)} for name, a, m in zip(names, acc, majority)
    },
  }


def accuracy_markdown(result: Dict, symbols: Optional[Mapping[str, str]] = None) -> str:
  """One model's per-attribute accuracy as Markdown, the mean first."""
  target = (symbols or {}).get(result["target"], result["target"])
  lines = [
    f"{result['target']} predicted from {result['given']}: sign of the mean of "
    f"p({target}|z), {result['inference']}; accuracy on {result['num_examples']} test "
    "examples against always predicting each attribute's majority test value.",
    "",
    "| attribute | accuracy | majority baseline |",
    "|---|---|---|",
    f"| **mean** | {result['mean_accuracy']:.4f} | {result['mean_majority']:.4f} |",
  ]
  lines += [
    f"| {name} | {v['accuracy']:.4f} | {v['majority']:.4f} |"
    for name, v in result["per_attribute"].items()
  ]
  return "\n".join(lines)


# --- the table ---------------------------------------------------------------------------


def merge_rows(records: Iterable[Dict]) -> Dict[str, Dict]:
  """Rows by model type; CVAE/CMMA records of both directions fill one row.

  Raises ValueError when two records fill the same cell.
  """
  rows: Dict[str, Dict] = {}
  for rec in records:
    row = rows.setdefault(rec["model"], {"values": {}, "iwae": {}, "sources": {}, "accuracy": []})
    for part in ("values", "iwae"):
      for key, value in rec.get(part, {}).items():
        if key in row[part]:
          raise ValueError(
            f"two model dirs give {registry.title(rec['model'])} "
            f"{part} {key}: {row['sources'][(part, key)]} and {rec['model_dir']}"
          )
        row[part][key] = value
        row["sources"][(part, key)] = rec["model_dir"]
    if "attribute_accuracy" in rec:
      row["accuracy"].append(rec["attribute_accuracy"])
  return rows


def _fmt(v: Optional[float]) -> str:
  if v is None:
    return "—"
  return f"{v:.4g}" if abs(v) < 100 else f"{v:.1f}"


def markdown_table(
  records: Sequence[Dict],
  definition: TableDefinition,
  with_paper: bool = True,
  data: str = "",
) -> str:
  """The table as Markdown: ours, with the paper's number in parentheses; IWAE and the
  attribute accuracy (where the table has it) below. `data`: what our numbers were measured
  on where the table's name would mislead (a data set's `provenance`, e.g. the synthetic
  stand-in for CelebA): a first line says so, and the note under the table too."""
  rows = merge_rows(records)
  names = registry.model_names()
  order = [r for r in names if r in rows]
  order += sorted(r for r in rows if r not in names)
  columns = definition.columns
  esc = lambda t: t.replace("|", "\\|")  # a bar inside a cell would end it

  def cell(r, c):
    ours = rows[r]["values"].get(c.key)
    paper = definition.paper.get(r, {}).get(c.key)
    return _fmt(ours) + (f" ({_fmt(paper)})" if with_paper and paper is not None else "")

  if len(columns) <= WIDE_COLUMNS:  # the paper's layout: a row per model
    head = "| model | " + " | ".join(esc(definition.title(c)) for c in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    lines += [
      f"| {registry.title(r)} | " + " | ".join(cell(r, c) for c in columns) + " |" for r in order
    ]
  else:  # more modalities, more columns than fit across: a row per column
    lines = [
      "| | " + " | ".join(registry.title(r) for r in order) + " |",
      "|---" * (len(order) + 1) + "|",
    ]
    lines += [
      f"| {esc(definition.title(c))} | " + " | ".join(cell(r, c) for r in order) + " |"
      for c in columns
    ]
  text = "\n".join(lines)
  if data:
    text = f"data: {data}\n\n" + text
  if with_paper and definition.paper:
    ours = f"Ours (on {data})" if data else "Ours"
    theirs = " (on its data set, not ours)" if data else ""
    text += (
      f"\n\n{ours}, with the paper's {definition.name}{theirs} in parentheses (higher is better)."
    )
  if any(rows[r]["iwae"] for r in order):
    iw_cols = [c for c in columns if not c.multi]
    joint = f"IWAE log p({','.join(definition.symbols.values())})"
    lines = [
      "| model | "
      + " | ".join(esc(definition.title(c, "IWAE ")) for c in iw_cols)
      + f" | {joint} |",
      "|---" * (len(iw_cols) + 2) + "|",
    ]
    for r in order:
      iw = rows[r]["iwae"]
      if iw:
        lines.append(
          f"| {registry.title(r)} | "
          + " | ".join(_fmt(iw.get(c.key)) for c in iw_cols)
          + f" | {_fmt(iw.get(definition.joint_key))} |"
        )
    text += "\n\n" + "\n".join(lines)
  if any(rows[r]["accuracy"] for r in order):
    acc = definition.accuracy
    lines = [
      f"| model | mean accuracy of {acc.target} from {','.join(acc.given)} | majority baseline |",
      "|---|---|---|",
    ]
    for r in order:
      for result in rows[r]["accuracy"]:
        lines.append(
          f"| {registry.title(r)} | {result['mean_accuracy']:.4f} | {result['mean_majority']:.4f} |"
        )
    text += "\n\n" + "\n".join(lines)
  return text
