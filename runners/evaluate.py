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
import os

from absl import flags

from runners import flagutil

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
  flagutil.define_plugins_flag(fv)
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


def output_dirs(dirs, fv=FLAGS):
  """([(directory of each model's evaluation.*, its flag)], (directory of the whole table, its
  flag) or None): the model dir itself, or --output_dir for a single one; the table goes to
  --output_dir, else the model dirs' common parent."""
  model_flag = "--model_dirs" if fv.model_dirs else "--model_dir"
  if len(dirs) == 1:
    return [(fv.output_dir, "--output_dir") if fv.output_dir else (dirs[0], model_flag)], None
  if fv.output_dir:
    return [(d, model_flag) for d in dirs], (fv.output_dir, "--output_dir")
  common = os.path.commonpath([os.path.abspath(d) for d in dirs])
  return [(d, model_flag) for d in dirs], (common, "the table's directory (set --output_dir)")


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  # DataError, IdxError, RunDirError (e.g. a checkpoint with non-finite weights), an
  # unwritable or full disk: one line, as for runners.train.
  with flagutil.one_line_errors():
    evaluate_all()


def evaluate_all(fv=FLAGS):
  """Checks every input (before any model is built or evaluated), then evaluates each
  model, writing its table row as it finishes, then the whole table
  (jmvae_tf.evaluation.report.evaluate_runs)."""
  import jmvae_tf  # pylint: disable=g-import-not-at-top
  from jmvae_tf.core import files  # pylint: disable=g-import-not-at-top
  from jmvae_tf.evaluation import report  # pylint: disable=g-import-not-at-top

  check_args(fv)
  dirs = expand_model_dirs(fv.model_dir, fv.model_dirs)
  runs = [jmvae_tf.load_run(d) for d in dirs]
  # Every run was trained on this data set (flagutil.run_data checks), so they share one table.
  data = flagutil.make_run_data(runs, fv)
  data.check_split("test", fv.num_test)
  model_outputs, table_output = output_dirs(dirs, fv)
  for directory, flag in model_outputs + ([table_output] if table_output else []):
    files.check_writable(directory, flag)  # before the evaluation, not after it
  report.evaluate_runs(
    runs,
    data,
    [directory for directory, _ in model_outputs],
    table_output[0] if table_output else None,
    log=lambda line: print(line, flush=True),
    num_test=fv.num_test,
    num_samples=fv.num_samples,
    iterations=fv.iterations,
    iwae_samples=fv.iwae_samples,
    batch_size=fv.batch_size,
    seed=fv.seed,
    data_seed=fv.data_seed,
    with_coherence=fv.coherence,
    classifier_epochs=fv.classifier_epochs,
    prior_samples=fv.prior_samples,
    progress=fv.progress,
  )


if __name__ == "__main__":
  flagutil.run(define_flags, main)
