"""runners.flagutil.one_line_errors: the boundary every runner ends through."""

from __future__ import annotations

import errno

import pytest

from runners import flagutil


def _exit_and_stderr(capsys, error: BaseException, **kwargs):
  with pytest.raises(SystemExit) as stopped:
    with flagutil.one_line_errors(**kwargs):
      raise error
  return stopped.value.code, capsys.readouterr().err


def test_a_one_line_value_error_is_one_line_and_exit_2(capsys):
  code, err = _exit_and_stderr(capsys, ValueError("--num_test=99: the data set has 30"))
  assert code == 2 and err == "error: --num_test=99: the data set has 30\n"


def test_an_os_error_names_its_file(capsys):
  error = OSError(errno.ENOSPC, "No space left on device", "/runs/a/evaluation.json")
  code, err = _exit_and_stderr(capsys, error)
  assert code == 2 and err == "error: /runs/a/evaluation.json: No space left on device\n"


def test_ctrl_c_is_its_own_line_and_exit_130(capsys):
  code, err = _exit_and_stderr(capsys, KeyboardInterrupt(), interrupted="stopped by you")
  assert code == 130 and err == "stopped by you\n"


def test_a_value_error_of_several_lines_is_a_bug_and_keeps_its_traceback(capsys):
  # TensorFlow's error for a failing tf.function: the cause is at the end, not the first line.
  traced = ValueError("in user code:\n\n  File x.py, line 3\n\n  ValueError: shapes differ")
  with pytest.raises(ValueError, match="shapes differ"):
    with flagutil.one_line_errors():
      raise traced
  assert capsys.readouterr().err == ""


def test_other_exceptions_pass_through():
  with pytest.raises(KeyError):
    with flagutil.one_line_errors():
      raise KeyError("a bug")
