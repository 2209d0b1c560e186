"""What the runners share: flag parsing with one-line errors (exit status 2), the flags every
runner that reads data defines (once, here), and the plug-in modules `--plugins` names,
imported before a runner defines its flags (so a plug-in's models and data sets are among
their choices)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import typing
from typing import Iterable

from absl import app, flags, logging

from jmvae_tf.core import files, plugins
from pipelines import registry

PLUGINS_HELP = (
  "Modules to import first, which register plug-ins (likelihood kinds, network families and "
  "their networks, architectures, models, data sets): module names on the Python path."
)


def define_plugins_flag(fv: flags.FlagValues):
  """--plugins, which `run` reads before the runner defines its other flags."""
  flags.DEFINE_list("plugins", [], PLUGINS_HELP, flag_values=fv)


def import_plugins(argv) -> None:
  """Imports the modules that --plugins names in `argv` (or in a --flagfile it names), with
  TensorFlow's start-up log set aside as for the runner itself. One that cannot be imported
  stops the runner with one line naming it (exit 2); a malformed command line is left to the
  runner's own parse, which names the problem."""
  wanted = flags.FlagValues()
  define_plugins_flag(wanted)
  try:
    wanted(argv[:1] + wanted.read_flags_from_files(argv[1:], force_gnu=False), known_only=True)
  except flags.Error:
    return
  if not wanted.plugins:
    return
  if not any(a.startswith(("--verbosity", "-v")) for a in argv[1:]):
    quiet_tensorflow(flags.FlagValues())
  try:
    with files.stderr_set_aside():
      plugins.import_plugins(wanted.plugins, "--plugins")
  except plugins.PluginError as e:
    fail(str(e))


def run(define_flags, main, tensorflow: bool = True):
  """A runner's entry point: its plug-ins imported, its flags defined and parsed (one line for
  a bad one), TensorFlow loaded quietly (unless `tensorflow` is False: a runner that needs
  none), then `main`."""
  import_plugins(sys.argv)
  define_flags()
  app.run(main, flags_parser=parse_or_exit if tensorflow else parse_only)


def define_data_flags(fv: flags.FlagValues):
  """--dataset, --data_dir and --data_options: which data set and where its files are."""
  d = dict(flag_values=fv)
  flags.DEFINE_enum(
    "dataset",
    "mnist",
    list(registry.dataset_names()),
    "Data set (pipelines/registry.py); it also picks the networks.",
    **d,
  )
  flags.DEFINE_string(
    "data_dir",
    None,
    "The data set's files (MNIST: the four IDX files); TensorFlow Datasets when unset.",
    **d,
  )
  flags.DEFINE_list(
    "data_options",
    [],
    "Options of the data set as key=value,... (e.g. celeb_a: crop=center,split=official).",
    **d,
  )


def _flag_type(hint) -> tuple:
  """(the base type, whether None is allowed) of a field's type hint."""
  args = [a for a in typing.get_args(hint) if a is not type(None)]
  if typing.get_origin(hint) is typing.Union and len(args) == 1:
    return args[0], True
  return hint, False


def define_option_flags(
  options_classes: Iterable[type], fv: flags.FlagValues, skip: Iterable[str] = ()
):
  """A flag for every field of the options dataclasses (jmvae_tf/core/options.py) that is one,
  with the field's default, help, choices and lower bound: the options are their one source.
  A field shared by several classes (latent_dim) is defined once."""
  defined = set(skip)
  for cls in options_classes:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
      if field.name in defined or not field.metadata.get("flag", False):
        continue
      defined.add(field.name)
      kind, _ = _flag_type(hints[field.name])
      kwargs = dict(flag_values=fv)
      for bound in ("lower_bound", "upper_bound"):
        if bound in field.metadata:
          kwargs[bound] = field.metadata[bound]
      default, help_text = field.default, field.metadata["help"]
      if "choices" in field.metadata:
        flags.DEFINE_enum(field.name, default, list(field.metadata["choices"]), help_text, **kwargs)
      elif kind is bool:
        flags.DEFINE_bool(field.name, default, help_text, flag_values=fv)
      elif kind is int:
        flags.DEFINE_integer(field.name, default, help_text, **kwargs)
      elif kind is float:
        flags.DEFINE_float(field.name, default, help_text, **kwargs)
      elif kind is str:
        flags.DEFINE_string(field.name, default, help_text, flag_values=fv)
      else:
        raise TypeError(f"{cls.__name__}.{field.name}: no flag for type {kind}")


def option_values(options_class: type, fv: flags.FlagValues, skip: Iterable[str] = ()) -> dict:
  """{field: the flag's value} for the fields of `options_class` that are flags."""
  return {
    f.name: fv[f.name].value
    for f in dataclasses.fields(options_class)
    if f.metadata.get("flag", False) and f.name not in set(skip)
  }


def run_data(runs, fv: flags.FlagValues) -> tuple:
  """(data set, its options) for runners that read trained runs (run_dir.Run): the runs'
  own (train.json's options) unless --dataset / --data_options name others. Runs trained
  on different data sets are a ValueError naming them; so is a --dataset other than theirs."""
  trained = {run.config.dataset for run in runs}
  if fv["dataset"].present:
    for run in runs:
      if run.config.dataset != fv.dataset:
        raise ValueError(
          f"{run.model_dir} was trained on --dataset={run.config.dataset}, not {fv.dataset}"
        )
    dataset = fv.dataset
  elif len(trained) > 1:
    raise ValueError(
      "the model dirs were trained on different data sets: "
      + ", ".join(f"{run.model_dir} on {run.config.dataset}" for run in runs)
    )
  else:
    (dataset,) = trained
  data_options = fv.data_options if fv["data_options"].present else list(runs[0].data_options)
  return dataset, data_options


def make_run_data(runs, fv: flags.FlagValues):
  """The data set the runs were trained on (run_data), read from --data_dir and checked
  against each run's recorded fingerprint (run_dir.Run.check_data): a DataError, one line,
  where --data_dir holds other data (another data set's files), before any work."""
  from pipelines import registry as data_registry  # pylint: disable=g-import-not-at-top

  dataset, data_options = run_data(runs, fv)
  data = data_registry.make_dataset(dataset, fv.data_dir, options=data_options)
  where = f"--data_dir={fv.data_dir}" if fv.data_dir else f"{dataset} (TensorFlow Datasets)"
  for run in runs:
    run.check_text(data, where)
    run.check_data(data, where)
  return data


def flags_text(fv: flags.FlagValues, define_flags) -> str:
  """The runner's own flags (those `define_flags` defines), one `--name=value` a line: a
  flagfile that reproduces the run, without absl's or TensorFlow's internal flags."""
  mine = flags.FlagValues()
  define_flags(mine)
  lines = [fv[name].serialize() for name in sorted(mine)]
  # No plug-ins is said by leaving the flag out, as flagfiles from before it did.
  return "".join(f"{line}\n" for line in lines if line and line != "--plugins=")


def parse_only(argv, flag_values=flags.FLAGS):
  """Parses argv; an unknown flag or a bad value stops with one line naming it (exit 2)."""
  try:
    return flag_values(argv)
  except flags.Error as e:
    prog = argv[0].rsplit("/", 1)[-1] if argv else "runner"
    print(f"{prog}: error: {e}", file=sys.stderr)
    sys.exit(2)


def parse_or_exit(argv, flag_values=flags.FLAGS):
  """parse_only, then loads TensorFlow (quietly): a Ctrl-C meanwhile is one line too, exit
  130."""
  argv = parse_only(argv, flag_values)
  try:
    quiet_tensorflow(flag_values)
  except KeyboardInterrupt:
    print("interrupted by SIGINT while starting; nothing was read or written", file=sys.stderr)
    sys.exit(130)
  return argv


def quiet_tensorflow(flag_values=flags.FLAGS):
  """Unless the user asked for --verbosity, keeps TensorFlow's start-up log (CUDA probing
  on a machine without a GPU, oneDNN notices) and its INFO lines (e.g. checkpoint sharding)
  off the console, so a runner prints only what its user needs, whatever TF_CPP_MIN_LOG_LEVEL
  the environment sets (a common 2 still shows the "failed call to cuInit" error). Runs
  before TensorFlow is imported."""
  if "verbosity" in flag_values and flag_values["verbosity"].present:
    return
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
  logging.set_verbosity(logging.WARNING)
  # TensorFlow's native libraries log while they load, before any log level applies: load
  # them now with the process's stderr set aside.
  with files.stderr_set_aside():
    import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    import tensorflow_probability  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    import tf_keras  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import


def fail(message: str):
  """One-line error (bad input, or a refusal the user can act on): exit status 2."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


@contextlib.contextmanager
def one_line_errors(interrupted: str = "interrupted by SIGINT"):
  """The runner boundary: what the library reports as bad input (ValueError: DataError,
  IdxError, RunDirError, ...), what the system or TensorFlow refuses that the library did
  not name (OSError, tf.errors.OpError: an unwritable path, a full disk) and a Ctrl-C
  (`interrupted` is its line) each end the runner with one line on stderr and no
  traceback: exit status 2, or 130 for SIGINT. The project's own errors are one line by
  design; a ValueError of several lines (TensorFlow's "in user code:" trace of a failing
  tf.function) is a bug, not bad input, and keeps its traceback."""
  try:
    yield
  except ValueError as e:
    if len(str(e).strip().splitlines()) > 1:
      raise
    fail(files.first_line(e, limit=None, with_type=False))
  except OSError as e:
    if e.filename and e.strerror:
      fail(f"{e.filename}: {e.strerror}")
    fail(files.first_line(e, limit=None, with_type=False))
  except KeyboardInterrupt:
    print(interrupted, file=sys.stderr)
    sys.exit(130)
  except Exception as e:  # pylint: disable=broad-except
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    if isinstance(e, tf.errors.OpError):
      fail(files.first_line(e, limit=None, message=e.message))
    raise
