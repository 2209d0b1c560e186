"""The ground floor of every consumer that writes: whole-file writes, writability checks before
long work, and the one-line messages they give. Imports nothing of the project, and
TensorFlow only when a function needs it, so the runners use it before TensorFlow starts.

Every file the project writes for a user (run files, evaluations, figures, edited faces) goes
through `write_whole`: written aside, then renamed, so a full disk or a crash leaves the
previous file whole. Runners call `check_writable` on their outputs before the work whose
results would be lost at its end.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from typing import Optional

# What a failed write of an output that may be new (a figure, an edited face) leaves the user.
OUTPUT_KEPT = "any earlier file of that name is unchanged"


class WriteError(ValueError):
  """A file or directory cannot be written (the message names it and what the user still
  has)."""


@contextlib.contextmanager
def stderr_set_aside(show_on_failure: bool = True):
  """Runs its block with this process's stderr (the file descriptor, so native libraries'
  output too: TensorFlow's while it loads, libjpeg's warnings) set aside; yields a function
  giving what was written there so far. If the block fails (other than by Ctrl-C), that is
  shown, unless `show_on_failure` is False."""
  with tempfile.TemporaryFile() as captured:
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(captured.fileno(), 2)

    def written() -> str:
      sys.stderr.flush()
      captured.seek(0)
      return captured.read().decode(errors="replace")

    try:
      yield written
    except KeyboardInterrupt:  # not a failure whose output says why
      raise
    except BaseException:
      os.dup2(saved, 2)
      if show_on_failure:
        sys.stderr.write(written())
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)


def first_line(
  error: BaseException, limit: Optional[int] = 200, with_type: bool = True, message=None
) -> str:
  """`error` as one line: its type (unless not `with_type`) and the first line of its
  message (or of `message`), at most `limit` long (None: any length)."""
  text = (str(error if message is None else message).strip().splitlines() or [""])[0]
  if with_type:
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
  return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


CACHE_ENV = "JMVAE_TF_CACHE_DIR"  # where derived data is kept; "off": nothing is kept


def cache_dir(part: str) -> Optional["os.PathLike"]:
  """Where the project keeps data it derives once and reads back (decoded faces, trained
  classifiers): $JMVAE_TF_CACHE_DIR/part, else ~/.cache/jmvae_tf/part (XDG_CACHE_HOME's);
  None for JMVAE_TF_CACHE_DIR=off."""
  from pathlib import Path  # pylint: disable=g-import-not-at-top

  configured = os.environ.get(CACHE_ENV)
  if configured == "off":
    return None
  if configured:
    return Path(configured, part)
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return Path(base, "jmvae_tf", part)


_WARNED = set()


def warn_once(message: str):
  """One line on stderr, once per process (a check may run again on the same directory)."""
  if message not in _WARNED:
    _WARNED.add(message)
    print(f"warning: {message}", file=sys.stderr, flush=True)


def disk_full(error: BaseException) -> bool:
  """Whether `error` is the system's or TensorFlow's way of saying the disk is full."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if isinstance(error, OSError):
    return error.errno in (errno.ENOSPC, errno.EDQUOT)
  return isinstance(error, tf.errors.ResourceExhaustedError) and any(
    words in str(error) for words in ("No space left", "quota")
  )


def write_whole(path: str, content: str | bytes, unchanged: str = "the previous file is unchanged"):
  """Replaces `path` by `content` (str or bytes) whole (written aside, then renamed), so a
  full disk or a crash leaves the previous file; a failure is a WriteError naming the
  file, then `unchanged` (what the user still has). Any tf.io.gfile path."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  path = os.fspath(path)
  temp = path + ".tmp"
  try:
    with tf.io.gfile.GFile(temp, "wb" if isinstance(content, bytes) else "w") as f:
      f.write(content)
    tf.io.gfile.rename(temp, path, overwrite=True)
  except (OSError, tf.errors.OpError) as e:
    with contextlib.suppress(OSError, tf.errors.OpError):
      tf.io.gfile.remove(temp)
    full = "the disk is full; " if disk_full(e) else ""
    raise WriteError(f"could not write {path} ({first_line(e)}): {full}{unchanged}") from None


def read_text(path: str):
  """The text of `path`, or None where there is no such file."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return f.read()


def check_writable(directory: str, flag: str = "--model_dir"):
  """A local directory, or where it would be created (the nearest of its parents that
  exists), must be a directory this process may write; else a WriteError naming `flag`
  (a flag such as "--output_dir", or what the directory is when no flag named it).
  Runners call it before long work, so its results are not lost at the end. Root passes
  os.access everywhere but on read-only file systems: what it cannot write there is
  found when it writes. Remote paths (gs://...) are not checked."""
  if "://" in directory:
    return
  named = f"{flag}={directory}" if flag.startswith("--") else f"{flag} {directory}"
  path = os.path.abspath(directory)
  while not os.path.lexists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  if path == os.path.abspath(directory) and not os.path.isdir(path):
    raise WriteError(f"{named} exists and is not a directory")
  if path != os.path.abspath(directory) and not os.path.isdir(path):
    raise WriteError(f"{named} cannot be created: {path} is not a directory")
  if os.path.isdir(path) and not os.access(path, os.W_OK | os.X_OK):
    raise WriteError(f"{named} cannot be written: {path} is read-only for this user")
