"""runners.synthetic_faces: the stand-in's command writes the faces, their attributes and
their partition in CelebA's layout, and says they are synthetic."""

from __future__ import annotations

import os
from pathlib import Path

from tiny_runs import run_module

from pipelines import synthetic_faces as sf


def test_cli_runs_end_to_end(tmp_path: Path) -> None:
  output = tmp_path / "faces"
  result = run_module(
    "runners.synthetic_faces", f"--output_dir={output}", "--num_images=5", "--seed=2", timeout=120
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert "SYNTHETIC" in result.stdout
  assert len(os.listdir(output / sf.IMAGE_DIR)) == 5
  assert (output / sf.ATTRIBUTE_FILE).read_text().startswith("5\n")
  assert len((output / sf.PARTITION_FILE).read_text().splitlines()) == 5


def test_the_old_command_name_still_writes_the_faces(tmp_path: Path) -> None:
  """`python -m pipelines.synthetic_faces` (where the command was before) runs the same one."""
  output = tmp_path / "faces"
  result = run_module(
    "pipelines.synthetic_faces", f"--output_dir={output}", "--num_images=3", timeout=120
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert "SYNTHETIC" in result.stdout
  assert len(os.listdir(output / sf.IMAGE_DIR)) == 3
