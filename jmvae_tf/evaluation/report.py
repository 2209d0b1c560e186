"""A model's evaluation, whole: the conditional log-likelihoods of its data set's table (eq 11,
IWAE where asked), the attributes it predicts from the image (Table 2), and coherence where
the data set has classes or attributes; as a record (what evaluation.json holds), as Markdown,
as TensorBoard scalars, and for several trained runs at once with the whole table.

`evaluate` is the Python API's (`jmvae_tf.evaluate`); `evaluate_runs` is what runners.evaluate
does with its flags, callable with plain arguments.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from jmvae_tf.core import files
from jmvae_tf.evaluation import coherence, table
from jmvae_tf.models import registry

# Examples times IWAE samples per batch: IWAE batches are cut to keep it near this.
IWAE_ROWS = 20_000


def table_of(model, data) -> table.TableDefinition:
  """The table `model` belongs to: its data set's (the paper's where it has one), in the order
  of its modalities."""
  dataset = model.dataset_name or data.name
  modalities = model.data_modalities
  return table.table_for(dataset, [m.name for m in modalities], paper=not has_text(modalities))


def has_text(modalities) -> bool:
  """Whether a modality is text: the paper's tables have none (its captions are this
  project's, made from the labels)."""
  return any(m.likelihood.reads_text for m in modalities)


def evaluate(
  model,
  data,
  num_test: Optional[int] = None,
  num_samples: int = 10,
  iterations: Optional[int] = None,
  iwae_samples: int = 0,
  batch_size: int = 500,
  seed: int = 0,
  data_seed: int = 0,
  with_coherence: bool = True,
  classifier_epochs: int = 2,
  prior_samples: int = 1000,
  progress: bool = True,
  classifiers: Optional[Dict[str, coherence.Classifier]] = None,
) -> Dict:
  """The record of `model` on the first `num_test` (default all) test examples of `data` (a
  DataSet): {"values": {"target|given": eq 11 estimate}, "iwae": ... (iwae_samples > 0),
  "attribute_accuracy": ... (where the table has it), "coherence": ... (where the data set
  has classes or attributes and `with_coherence`), with N = num_samples, K = iterations
  (default: the table's, the paper's K), the estimator and how many examples}.

  Coherence reads images with classifiers trained once on the data set's real training
  images and cached (`classifiers`: those already made, for several models on one data set).
  """
  for name, value, low in (
    ("num_samples", num_samples, 1),
    ("iwae_samples", iwae_samples, 0),
    ("batch_size", batch_size, 1),
    ("iterations", iterations, 0),
  ):
    if value is not None and value < low:
      raise ValueError(f"{name} must be at least {low}, got {value}")
  definition = table_of(model, data)
  iterations = definition.iterations if iterations is None else iterations
  num_test = data.check_split("test", num_test)
  dataset = data.eval_dataset("test", batch_size, data_seed, num_test)
  iwae_dataset = None
  if iwae_samples:
    iwae_batch = max(1, min(batch_size, IWAE_ROWS // iwae_samples))
    iwae_dataset = data.eval_dataset("test", iwae_batch, data_seed, num_test)
  result = table.evaluate(
    model,
    dataset,
    definition.columns,
    num_samples=num_samples,
    iterations=iterations,
    iwae_samples=iwae_samples,
    iwae_dataset=iwae_dataset,
    seed=seed,
    progress=progress,
  )
  record = {
    "model": registry.name_of(type(model)) or type(model).__name__,
    "latent_dim": model.latent_dim,
    "estimator": table.describe_estimator(model, num_samples, iterations, definition.columns),
    **result,
  }
  if model.conditioning_modalities:  # a one-way model: which direction it fills
    record["direction"] = (
      f"{','.join(model.generated_modalities)}|{','.join(model.conditioning_modalities)}"
    )
  if data.provenance:  # e.g. the synthetic stand-in read as celeb_a
    record["data"] = data.provenance
  # What was read, so that a record says which data its numbers are of.
  record["dataset"], record["data_options"] = data.name, list(data.options)
  record["data_fingerprint"] = data.fingerprint()
  if table.supports_accuracy(model, definition.accuracy):
    # Column names of the predicted attributes: the data set's metadata (CelebA: its 40 names).
    names = list(data.metadata("test", 1))
    record["attribute_accuracy"] = table.attribute_accuracy(
      model, dataset, definition.accuracy, iterations, names, seed
    )
  truth = data.labels("test", num_test) if with_coherence else None
  if truth is not None:
    if classifiers is None:
      classifiers = coherence.data_readers(data, classifier_epochs, data_seed)
    record["coherence"] = coherence.evaluate(
      model, dataset, truth, classifiers, iterations, prior_samples, seed, data.label_modalities()
    )
  return record


def markdown(record: Dict, definition: table.TableDefinition, data: str = "") -> str:
  """One model's evaluation.md: its row of the table, the estimator, the attribute accuracy
  and the coherence where the record has them."""
  text = table.markdown_table([record], definition=definition, data=data)
  text += f"\n\nEstimator: {record['estimator']}. Test examples: {record['num_examples']}."
  if record.get("per_token"):
    text += "\n\n" + per_token_markdown(record["per_token"], definition)
  if "dataset" in record:
    options = f", options {', '.join(record['data_options'])}" if record["data_options"] else ""
    text += (
      f"\n\nData: {record['dataset']}{options}; fingerprint of its training examples "
      f"{record['data_fingerprint']}."
    )
  if "attribute_accuracy" in record:
    text += "\n\n" + table.accuracy_markdown(record["attribute_accuracy"], definition.symbols)
  if "coherence" in record:
    text += "\n\n" + coherence.markdown([record["coherence"]], [registry.title(record["model"])])
  return text


def per_token_markdown(per_token: Dict[str, float], definition: table.TableDefinition) -> str:
  """The text targets' log-likelihoods per token: the test captions' summed estimate over
  their tokens (each word and the end of the sentence; padding excluded)."""
  by_key = {c.key: c for c in definition.columns}
  parts = [
    f"{by_key[k].title('', definition.symbols) if k in by_key else k} {v:.4f}"
    for k, v in per_token.items()
  ]
  return (
    "Per token (the test captions' summed estimate over their tokens, the end of each sentence "
    "included, padding not): " + "; ".join(parts) + "."
  )


def console(text: str) -> str:
  """Markdown written to files, for a terminal: `log p(x~|w)`, not its escaped `\\|`."""
  return text.replace("\\|", "|")


def write_outputs(directory: str, stem: str, records, text: str) -> str:
  """`stem`.json and .md in `directory`, each replaced whole: a full disk leaves the previous
  files and is a WriteError naming the file. Returns the path without its suffix."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, stem)
  files.write_whole(f"{path}.json", json.dumps(records, indent=2, sort_keys=True))
  files.write_whole(f"{path}.md", text + "\n")
  return path


def write_summaries(log_dir: str, record: Dict, epoch: int):
  """An evaluation record as TensorBoard scalars at the checkpoint's epoch:
  log_likelihood/<target|given> (and iwae/...), coherence/<target|given> and coherence/prior."""
  writer = tf.summary.create_file_writer(log_dir)
  with writer.as_default(step=epoch):
    for key, value in record.get("values", {}).items():
      tf.summary.scalar(f"log_likelihood/{key}", value)
    for key, value in record.get("iwae", {}).items():
      tf.summary.scalar(f"iwae/{key}", value)
    for key, value in record.get("per_token", {}).items():
      tf.summary.scalar(f"log_likelihood_per_token/{key}", value)
    found = record.get("coherence") or {}
    for key, value in found.get("pairs", {}).items():
      tf.summary.scalar(f"coherence/{key}", value)
    if found.get("prior") is not None:
      tf.summary.scalar("coherence/prior", found["prior"])
  writer.flush()


def evaluate_runs(
  runs: Sequence,
  data,
  model_outputs: Sequence[str],
  table_output: Optional[str] = None,
  log: Callable[[str], None] = print,
  **settings,
) -> List[Dict]:
  """Evaluates trained runs (run_dir.Run, all of `data`'s data set) one by one: each record,
  with its model_dir, goes to evaluation.json/.md in its `model_outputs` directory and to
  TensorBoard under its logs/evaluation as it finishes; with several runs, the whole table
  (CVAE/CMMA rows joining their two one-way models, the paper's numbers beside ours) goes to
  `table_output` as <stem>.json/.md. `settings` are `evaluate`'s (num_test, num_samples,
  iterations, ...). Returns the records."""
  config = runs[0].config
  definition = table.table_for(
    config.dataset, config.modality_names, paper=not has_text(config.modalities)
  )
  iterations = settings.get("iterations")
  iterations = definition.iterations if iterations is None else iterations
  settings = {**settings, "iterations": iterations}
  num_test = data.check_split("test", settings.get("num_test"))
  classifiers = None
  if settings.get("with_coherence", True) and data.labels("test", 1) is not None:
    classifiers = coherence.data_readers(
      data, settings.get("classifier_epochs", 2), settings.get("data_seed", 0)
    )
    for name, c in classifiers.items():
      if isinstance(c, coherence.TextReader):
        log(
          f"coherence: {name} read by the data set's caption parser, agreement with the true "
          f"labels on the {c.num_test} real test captions {c.agreement:.4f}"
        )
        continue
      log(
        f"coherence: {name} read by a classifier trained on {c.num_train} real training "
        f"images, test accuracy {c.test_accuracy:.4f}"
      )
  num_samples = settings.get("num_samples", 10)
  iwae_samples = settings.get("iwae_samples", 0)
  records = []
  for run, output in zip(runs, model_outputs):
    config = run.config
    log(
      f"evaluating {config.model} ({run.model_dir}) for {definition.name} on "
      + (f"{data.provenance}: " if data.provenance else "")
      + f"{num_test} test examples, N={num_samples}, K={iterations}"
      + (f", IWAE k={iwae_samples}" if iwae_samples else "")
    )
    log(f"read {run.describe()}")
    model = run.restore()
    record = evaluate(model, data, classifiers=classifiers, **settings)
    record = {**record, "model": config.model, "model_dir": os.path.abspath(run.model_dir)}
    records.append(record)
    row = table.markdown_table([record], definition=definition, data=data.provenance)
    log(console(row))
    log(
      f"estimator: {record['estimator']}; {record['num_examples']} test examples; "
      f"{record['seconds']:.1f} s"
    )
    if record.get("per_token"):
      log(console(per_token_markdown(record["per_token"], definition)))
    if "coherence" in record:
      log(console(coherence.markdown([record["coherence"]], [registry.title(config.model)])))
    path = write_outputs(
      output, "evaluation", record, markdown(record, definition, data.provenance)
    )
    log(f"wrote {os.path.abspath(path)}.json and .md")
    write_summaries(os.path.join(output, "logs", "evaluation"), record, run.epoch)
  if len(runs) > 1 and table_output is not None:
    write_table(
      records, definition, data, table_output, num_test, num_samples, iterations, iwae_samples, log
    )
  return records


def write_table(
  records,
  definition,
  data,
  directory: str,
  num_test: int,
  num_samples: int,
  iterations: int,
  iwae_samples: int,
  log: Callable[[str], None] = print,
) -> Tuple[str, str]:
  """The whole table of several runs' records in `directory` (<stem>.json/.md); returns the
  path and the Markdown."""
  text = table.markdown_table(records, definition=definition, data=data.provenance)
  settings = (
    f"Test examples: {num_test}; N = {num_samples} samples of z (eq 11); K = {iterations} "
    "iterative-sampling rounds for JMVAE / hierarchical JMVAE"
    + (f"; IWAE k = {iwae_samples}" if iwae_samples else "")
    + "."
  )
  if all("coherence" in r for r in records):
    text += "\n\n" + coherence.markdown(
      [r["coherence"] for r in records], [registry.title(r["model"]) for r in records]
    )
  path = write_outputs(directory, definition.stem, records, text + "\n\n" + settings)
  log(f"wrote {os.path.abspath(path)}.json and .md")
  log(f"\n{definition.name}\n" + console(text) + "\n" + settings)
  log(f"wrote {path}.md and {definition.stem}.json")
  return path, text
