"""Flag parsing shared by the runners: absl errors as one line, exit status 2."""

from __future__ import annotations

import sys

from absl import flags


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
