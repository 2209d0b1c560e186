"""docs/PYTHON_API.md runs as written: its Python blocks, in order, in one namespace, from a
folder laid out as the repository root is (../shared/data/mnist beside it, tests/ in it), on
the slice of MNIST the page asks for. What it prints is checked against the page where it is
not a measured number (shapes, names, steps), and the numbers for what they must be."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "PYTHON_API.md"


def blocks(text: str):
  return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_page_has_the_session_first_and_nothing_hidden():
  code = blocks(PAGE.read_text())
  assert len(code) >= 6
  first = code[0]
  for call in (
    "jt.make_model(",
    "jt.train(",
    "model.posterior(",
    "model.generated_mean(",
    "jt.evaluate(",
    "jt.export(",
    "jt.load(",
  ):
    assert call in first, call
  assert len(first.strip().splitlines()) <= 20  # about a dozen lines


def test_the_pages_code_runs_as_written(mnist_dir, tmp_path, monkeypatch, capsys):
  """In this process (as a notebook's kernel would run it), from a folder laid out as the
  repository root is."""
  shared = tmp_path / "shared" / "data"
  shared.mkdir(parents=True)
  (shared / "mnist").symlink_to(mnist_dir)
  work = tmp_path / "work"
  work.mkdir()
  (work / "tests").symlink_to(ROOT / "tests")
  monkeypatch.chdir(work)
  monkeypatch.setattr(sys, "path", list(sys.path))  # the page adds tests/ to it
  code = "\n".join(blocks(PAGE.read_text()))
  exec(compile(code, str(PAGE), "exec"), {"__name__": "__page__"})  # noqa: S102
  printed = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]
  for exact in (
    "(8, 16) (8, 28, 28, 1) (8, 10)",
    "steps of this call: 12",
    "['z_from_image', 'z_from_label', 'z_joint']",
    "{'count_plugin': ['data set counts', 'family networks counts', 'likelihood kind poisson', "
    "'network family counts']}",
  ):
    assert exact in printed, (exact, printed)
  losses = eval(next(line for line in printed if line.startswith("[")))  # noqa: S307
  assert len(losses) == 5 and losses[-1] < losses[0]
  read = float(next(line for line in printed if line.startswith("class read off")).split()[-1])
  assert read > 0.9  # a learnable toy: the class is read off its picture
  values = eval(next(line for line in printed if line.startswith("{'image|label'")))  # noqa: S307
  assert set(values) == {"image|label", "label|image", "image|image,label", "label|image,label"}
  assert (work / "runs" / "api_demo" / "ckpt").is_dir()
  assert (work / "runs" / "exports" / "jmvae_kl" / "1" / "saved_model.pb").is_file()
  assert (work / "runs" / "api_figures" / "figure3_jmvae_kl.png").is_file()
