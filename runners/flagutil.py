"""What the runners share: flag parsing with one-line errors (exit status 2) and the
flags every runner that reads data defines (once, here)."""

from __future__ import annotations

import sys

from absl import flags

from pipelines import registry


def define_data_flags(fv: flags.FlagValues):
  """--dataset, --data_dir and --data_options: which data set and where its files are."""
  d = dict(flag_values=fv)
  flags.DEFINE_enum("dataset", "mnist", list(registry.DATASET_NAMES),
                    "Data set (pipelines/registry.py); it also picks the networks.", **d)
  flags.DEFINE_string("data_dir", None, "The data set's files (MNIST: the four IDX files); "
                      "TensorFlow Datasets when unset.", **d)
  flags.DEFINE_list("data_options", [], "Options of the data set as key=value,... "
                    "(e.g. celeb_a: crop=center,split=official).", **d)


def parse_or_exit(argv, flag_values=flags.FLAGS):
  """Parses argv; an unknown flag or a bad value stops with one line naming it."""
  try:
    return flag_values(argv)
  except flags.Error as e:
    prog = argv[0].rsplit("/", 1)[-1] if argv else "runner"
    print(f"{prog}: error: {e}", file=sys.stderr)
    sys.exit(2)


def fail(message: str):
  """One-line error for bad input, before any work starts."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)
