r"""Evaluates trained models: their rows of the paper's Table 1 (MNIST) or Table 2 (CelebA),
test conditional log-likelihoods.

  python -m runners.evaluate --model_dir=/work/runs/jmvae --data_dir=../shared/data/mnist
  python -m runners.evaluate --model_dirs='/work/runs/*' --data_dir=../shared/data/mnist \
      --output_dir=/work/runs/table1
  python -m runners.evaluate --model_dirs='/work/runs/celeba_*' --dataset=celeb_a \
      --data_dir=/data/celeba --output_dir=/work/runs/table2

The table is the one of the runs' data set (jmvae_tf/evaluation/table.py: `table_for`).
Estimator (see jmvae_tf/evaluation/estimators.py): eq 11's lower bound with N = --num_samples
draws of z; for the single conditionals JMVAE and hierarchical JMVAE first impute the missing
modality by K = --iterations rounds of iterative sampling (default: the paper's K for that
table, 100 for Table 1, 40 for Table 2). --iwae_samples=k > 0 adds the importance-weighted
estimates (log p(x|w) = IWAE log p(x,w) - IWAE log p(w), as the authors' code). For CelebA
each model that can predict the attributes from the image also gets its per-attribute accuracy
(sign of the mean of p(w|z), z from the image alone) against the majority-class baseline.
Where the data set is not what the table's name says (the synthetic stand-in for CelebA: its
`provenance`), a line "data: ..." heads the table and the records say so under "data".

Writes evaluation.json / evaluation.md into each model dir, and with several dirs table1.json /
table1.md (table2.* for CelebA: the whole table, the paper's numbers beside ours) into
--output_dir.
"""

from __future__ import annotations

import glob
import json
import os

from absl import app, flags

from runners import flagutil

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("model_dir", None, "A model directory written by runners.train.", **d)
  flags.DEFINE_string(
    "model_dirs", None, "Several model directories: comma-separated, each may be a glob.", **d
  )
  flags.DEFINE_string(
    "output_dir",
    None,
    "Where table1.json/.md (CelebA: table2.*) go (default: "
    "the model dir, or the common parent of --model_dirs).",
    **d,
  )
  flagutil.define_data_flags(fv)
  flags.DEFINE_integer(
    "num_test", None, "Test examples: the first N of the test set (default all).", **d
  )
  flags.DEFINE_integer(
    "iterations",
    None,
    "K: rounds of iterative sampling (eq 6) for "
    "JMVAE/hierarchical; default: the paper's for the data set's table "
    "(Table 1: 100, Table 2: 40).",
    **d,
  )
  flags.DEFINE_integer("num_samples", 10, "N: samples of z in the eq 11 bound.", **d)
  flags.DEFINE_integer("iwae_samples", 0, "k of the IWAE estimates (e.g. 1000); 0 = off.", **d)
  flags.DEFINE_integer("batch_size", 500, "Test examples per compiled batch.", **d)
  flags.DEFINE_integer("seed", 0, "Seed of the estimators' sampling.", **d)
  flags.DEFINE_integer(
    "data_seed", 0, "Seed of the test set's binarisation (training's default: 0).", **d
  )
  flags.DEFINE_bool("progress", True, "Show a progress bar.", **d)
  flags.DEFINE_bool(
    "coherence",
    True,
    "Also the coherence of every (given modalities -> generated one) pair and of prior "
    "samples, where the data set has classes or attributes; images are read by classifiers "
    "trained once on its real training images and kept in the cache "
    "(classifiers/ under $JMVAE_TF_CACHE_DIR, else ~/.cache/jmvae_tf/classifiers).",
    **d,
  )
  flags.DEFINE_integer(
    "classifier_epochs", 2, "Coherence: epochs of the classifiers' training.", lower_bound=1, **d
  )
  flags.DEFINE_integer(
    "prior_samples",
    1000,
    "Coherence: draws from the prior for the joint coherence (0: none).",
    lower_bound=0,
    **d,
  )


def expand_model_dirs(model_dir, model_dirs):
  """The model directories named by --model_dir / --model_dirs (globs expanded, in order)."""
  if bool(model_dir) == bool(model_dirs):
    raise ValueError("give exactly one of --model_dir and --model_dirs")
  if model_dir:
    return [model_dir]
  dirs = []
  for part in (p.strip() for p in model_dirs.split(",") if p.strip()):
    matches = sorted(glob.glob(part)) if glob.has_magic(part) else [part]
    matches = [
      m for m in matches if not glob.has_magic(part) or os.path.isfile(os.path.join(m, "run.json"))
    ]
    if not matches:
      raise ValueError(f"--model_dirs: {part!r} matches no model directory")
    dirs += [m for m in matches if m not in dirs]
  return dirs


def check_args(fv=FLAGS):
  for name, low in (("iterations", 0), ("num_samples", 1), ("iwae_samples", 0), ("batch_size", 1)):
    if getattr(fv, name) is not None and getattr(fv, name) < low:
      raise ValueError(f"--{name} must be at least {low}, got {getattr(fv, name)}")


def model_record(model, config, model_dir, result, columns=None) -> dict:
  from jmvae_tf.evaluation import table  # pylint: disable=g-import-not-at-top

  rec = {
    "model": config.model,
    "model_dir": os.path.abspath(model_dir),
    "latent_dim": config.latent_dim,
    "estimator": table.describe_estimator(
      model, result["num_samples"], result["iterations"], columns
    ),
    **result,
  }
  if model.conditioning_modalities:  # a one-way model: which direction it fills
    rec["direction"] = (
      f"{','.join(model.generated_modalities)}|{','.join(model.conditioning_modalities)}"
    )
  return rec


def output_dirs(dirs):
  """([(directory of each model's evaluation.*, its flag)], (directory of the whole table, its
  flag) or None): the model dir itself, or --output_dir for a single one; the table goes to
  --output_dir, else the model dirs' common parent."""
  model_flag = "--model_dirs" if FLAGS.model_dirs else "--model_dir"
  if len(dirs) == 1:
    return [(FLAGS.output_dir, "--output_dir") if FLAGS.output_dir else (dirs[0], model_flag)], None
  if FLAGS.output_dir:
    return [(d, model_flag) for d in dirs], (FLAGS.output_dir, "--output_dir")
  common = os.path.commonpath([os.path.abspath(d) for d in dirs])
  return [(d, model_flag) for d in dirs], (common, "the table's directory (set --output_dir)")


def write_outputs(directory: str, stem: str, records, markdown: str):
  """`stem`.json and .md in `directory`, each replaced whole: a full disk leaves the
  previous files and is a WriteError naming the file."""
  from jmvae_tf.core import files  # pylint: disable=g-import-not-at-top

  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, stem)
  files.write_whole(f"{path}.json", json.dumps(records, indent=2, sort_keys=True))
  files.write_whole(f"{path}.md", markdown + "\n")
  print(f"wrote {os.path.abspath(path)}.json and .md")


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  # DataError, IdxError, RunDirError (e.g. a checkpoint with non-finite weights), an
  # unwritable or full disk: one line, as for runners.train.
  with flagutil.one_line_errors():
    evaluate_all()


def evaluate_all():
  """Checks every input (before any model is built or evaluated), then evaluates each
  model, writing its table row as it finishes, then the whole table."""
  from jmvae_tf.core import files  # pylint: disable=g-import-not-at-top
  from jmvae_tf.evaluation import coherence, table  # pylint: disable=g-import-not-at-top
  from jmvae_tf.training import run_dir, summaries  # pylint: disable=g-import-not-at-top
  from pipelines import registry  # pylint: disable=g-import-not-at-top

  check_args()
  dirs = expand_model_dirs(FLAGS.model_dir, FLAGS.model_dirs)
  runs = [run_dir.load_run(d) for d in dirs]
  configs = [run.config for run in runs]
  # Every run was trained on this data set (flagutil.run_data checks), so they share one table.
  dataset, data_options = flagutil.run_data(runs, FLAGS)
  definition = table.table_for(dataset, configs[0].modality_names)
  data = registry.make_dataset(dataset, FLAGS.data_dir, options=data_options)
  data.check_split("test", FLAGS.num_test)
  model_outputs, table_output = output_dirs(dirs)
  for directory, flag in model_outputs + ([table_output] if table_output else []):
    files.check_writable(directory, flag)  # before the evaluation, not after it
  iterations = definition.iterations if FLAGS.iterations is None else FLAGS.iterations
  # Column names of the predicted attributes: the data set's metadata (CelebA: its 40 names).
  attribute_names = list(data.metadata("test", 1)) if definition.accuracy else None

  dataset = data.eval_dataset("test", FLAGS.batch_size, FLAGS.data_seed, FLAGS.num_test)
  iwae_dataset = None
  if FLAGS.iwae_samples:
    # Keep samples x examples per batch near 20,000 rows.
    iwae_batch = max(1, min(FLAGS.batch_size, 20000 // FLAGS.iwae_samples))
    iwae_dataset = data.eval_dataset("test", iwae_batch, FLAGS.data_seed, FLAGS.num_test)
  num_test = data.check_split("test", FLAGS.num_test)
  truth = data.labels("test", num_test) if FLAGS.coherence else None
  classifiers = {}
  if truth is not None:
    classifiers = coherence.image_classifiers(data, FLAGS.classifier_epochs, FLAGS.data_seed)
    for name, c in classifiers.items():
      print(
        f"coherence: {name} read by a classifier trained on {c.num_train} real training "
        f"images, test accuracy {c.test_accuracy:.4f}",
        flush=True,
      )
  records = []
  for d, run, (output, _) in zip(dirs, runs, model_outputs):
    config = run.config
    print(
      f"evaluating {config.model} ({d}) for {definition.name} on "
      + (f"{data.provenance}: " if data.provenance else "")
      + f"{data.check_split('test', FLAGS.num_test)} test examples, N={FLAGS.num_samples}, "
      f"K={iterations}" + (f", IWAE k={FLAGS.iwae_samples}" if FLAGS.iwae_samples else ""),
      flush=True,
    )
    print(f"read {run.describe()}", flush=True)
    model = run.restore()
    result = table.evaluate(
      model,
      dataset,
      definition.columns,
      num_samples=FLAGS.num_samples,
      iterations=iterations,
      iwae_samples=FLAGS.iwae_samples,
      iwae_dataset=iwae_dataset,
      seed=FLAGS.seed,
      progress=FLAGS.progress,
    )
    rec = model_record(model, config, d, result, definition.columns)
    if data.provenance:  # e.g. the synthetic stand-in read as celeb_a
      rec["data"] = data.provenance
    extra = ""
    if table.supports_accuracy(model, definition.accuracy):
      rec["attribute_accuracy"] = table.attribute_accuracy(
        model, dataset, definition.accuracy, iterations, attribute_names, FLAGS.seed
      )
      extra = "\n\n" + table.accuracy_markdown(rec["attribute_accuracy"], definition.symbols)
    if truth is not None:
      rec["coherence"] = coherence.evaluate(
        model, dataset, truth, classifiers, iterations, FLAGS.prior_samples, FLAGS.seed
      )
      extra += "\n\n" + coherence.markdown([rec["coherence"]], [registry_title(config.model)])
    records.append(rec)
    md = table.markdown_table([rec], definition=definition, data=data.provenance)
    print(console(md))
    print(
      f"estimator: {rec['estimator']}; {rec['num_examples']} test examples; "
      f"{result['seconds']:.1f} s",
      flush=True,
    )
    if "coherence" in rec:
      print(console(coherence.markdown([rec["coherence"]], [registry_title(config.model)])))
    write_outputs(
      output,
      "evaluation",
      rec,
      md + f"\n\nEstimator: {rec['estimator']}. Test examples: {rec['num_examples']}." + extra,
    )
    summaries.write_evaluation(os.path.join(output, "logs", "evaluation"), rec, run.epoch)
  if len(dirs) > 1:
    md = table.markdown_table(records, definition=definition, data=data.provenance)
    out = table_output[0]
    settings = (
      f"Test examples: {data.check_split('test', FLAGS.num_test)}; "
      f"N = {FLAGS.num_samples} samples of z (eq 11); K = {iterations} "
      "iterative-sampling rounds for JMVAE / hierarchical JMVAE"
      + (f"; IWAE k = {FLAGS.iwae_samples}" if FLAGS.iwae_samples else "")
      + "."
    )
    if all("coherence" in r for r in records):
      md += "\n\n" + coherence.markdown(
        [r["coherence"] for r in records], [registry_title(r["model"]) for r in records]
      )
    stem = definition.stem
    write_outputs(out, stem, records, md + "\n\n" + settings)
    print(f"\n{definition.name}\n" + console(md) + "\n" + settings)
    print(f"wrote {os.path.join(out, stem + '.md')} and {stem}.json")


def registry_title(model: str) -> str:
  from jmvae_tf.models import registry  # pylint: disable=g-import-not-at-top

  return registry.title(model)


def console(markdown: str) -> str:
  """The Markdown written to files, for a terminal: `log p(x~|w)`, not its escaped `\\|`."""
  return markdown.replace("\\|", "|")


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=flagutil.parse_or_exit)
