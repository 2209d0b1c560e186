"""jmvae_tf/core/files.py: whole-file writes that leave the previous file on failure, writability
checks before long work, and the one-line messages they give."""

import errno
import os

import pytest
import tensorflow as tf
from tiny_runs import read_only_dir

from jmvae_tf.core import files


def test_write_whole_replaces_a_file_with_text_or_bytes_and_leaves_nothing_aside(tmp_path):
  path = tmp_path / "result.json"
  files.write_whole(str(path), "first")
  files.write_whole(path, "second")  # a PathLike too
  assert path.read_text() == "second"
  files.write_whole(str(path), b"\x00\xffbytes")
  assert path.read_bytes() == b"\x00\xffbytes"
  assert sorted(os.listdir(tmp_path)) == ["result.json"]
  files.write_whole(str(path), "é\n")
  assert files.read_text(str(path)) == "é\n"
  assert files.read_text(str(tmp_path / "missing")) is None


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_write_whole_on_a_full_disk_keeps_the_previous_file_and_says_so(tmp_path):
  """The aside file is a link to /dev/full, where every write fails with ENOSPC."""
  path = tmp_path / "table.md"
  path.write_text("earlier")
  os.symlink("/dev/full", tmp_path / "table.md.tmp")
  with pytest.raises(files.WriteError) as full:
    files.write_whole(str(path), "later", files.OUTPUT_KEPT)
  message = str(full.value)
  assert message.startswith(f"could not write {path} (")
  assert message.endswith(f"): the disk is full; {files.OUTPUT_KEPT}") and "\n" not in message
  assert path.read_text() == "earlier"
  assert not os.path.lexists(tmp_path / "table.md.tmp")


def test_write_whole_into_a_missing_directory_is_a_write_error_without_disk_full(tmp_path):
  path = tmp_path / "missing" / "out.txt"
  with pytest.raises(files.WriteError, match="could not write .*out.txt") as failed:
    files.write_whole(str(path), "x")
  assert "disk is full" not in str(failed.value)
  assert str(failed.value).endswith("the previous file is unchanged")


def test_check_writable_names_the_flag_and_refuses_a_file(tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  with pytest.raises(files.WriteError, match=r"--output_dir=.*a_file exists and is not a"):
    files.check_writable(str(a_file), "--output_dir")
  with pytest.raises(files.WriteError, match=r"^the table's directory .*cannot be created"):
    files.check_writable(str(a_file / "sub"), "the table's directory")
  files.check_writable(str(tmp_path / "new" / "dir"), "--output_dir")  # creatable: passes
  assert not (tmp_path / "new").exists()  # and nothing was made


def test_check_writable_refuses_a_read_only_parent_and_skips_remote_paths(tmp_path):
  parent = read_only_dir(tmp_path)
  with pytest.raises(files.WriteError) as refused:
    files.check_writable(str(parent / "out"), "--output_dir")
  assert str(refused.value) == (
    f"--output_dir={parent / 'out'} cannot be written: {parent} is read-only for this user"
  )
  files.check_writable("gs://bucket/run")  # not checked: found when it is written


def test_first_line_is_the_type_and_the_first_line_of_the_message_within_the_limit():
  assert files.first_line(ValueError("bad\nmore detail")) == "ValueError: bad"
  assert files.first_line(KeyboardInterrupt()) == "KeyboardInterrupt"
  long = files.first_line(OSError("x" * 300), limit=20)
  assert long == "OSError: xxxxxxxx..." and len(long) == 20


def test_disk_full_knows_the_systems_and_tensorflows_ways_of_saying_it():
  assert files.disk_full(OSError(errno.ENOSPC, "No space left on device"))
  assert files.disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
  assert not files.disk_full(OSError(errno.EACCES, "Permission denied"))
  assert files.disk_full(tf.errors.ResourceExhaustedError(None, None, "x; No space left on device"))
  assert not files.disk_full(tf.errors.ResourceExhaustedError(None, None, "OOM allocating"))
  assert not files.disk_full(ValueError("No space left"))


def test_warn_once_prints_one_line_once(capsys):
  files.warn_once("test_files: said once")
  files.warn_once("test_files: said once")
  assert capsys.readouterr().err == "warning: test_files: said once\n"
