"""runners.evaluate and runners.figures end to end on models trained for a few steps (in tmp_path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from idx_writer import write_idx
from jmvae_tf import training
from jmvae_tf.config import ModelConfig, TrainConfig
from pipelines import mnist

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
  """A tiny MNIST-format data set: 200 train, 30 test random images."""
  directory = tmp_path_factory.mktemp("mnist")
  rng = np.random.default_rng(0)
  for role, n in (("train", 200), ("test", 30)):
    write_idx(directory / mnist.IDX_FILES[f"{role}_images"], rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
    write_idx(directory / mnist.IDX_FILES[f"{role}_labels"], rng.integers(0, 10, n).astype(np.uint8))
  return directory


def _train(model_dir: Path, data_dir: Path, **model_kwargs) -> Path:
  arrays = mnist.load_arrays(data_dir)
  config = ModelConfig(latent_dim=2, **model_kwargs)
  train_config = TrainConfig(epochs=1, batch_size=50, warmup_epochs=0, jit_compile=False, steps_per_execution=1,
                             strategy="default")
  training.train(config, train_config, str(model_dir),
                 lambda start: mnist.train_dataset(arrays.train_images, arrays.train_labels, 50, seed=0,
                                                   start_epoch=start),
                 steps_per_epoch=2, verbose=0)
  return model_dir


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, data_dir):
  root = tmp_path_factory.mktemp("runs")
  return {
      "jmvae": _train(root / "jmvae", data_dir, model="jmvae"),
      "jmvae_kl": _train(root / "jmvae_kl", data_dir, model="jmvae_kl"),
      "hierarchical_jmvae": _train(root / "hier", data_dir, model="hierarchical_jmvae"),
      "cvae_image": _train(root / "cvae_image", data_dir, model="cvae", target="image", condition="label"),
      "cvae_label": _train(root / "cvae_label", data_dir, model="cvae", target="label", condition="image"),
  }


def run(module: str, *args: str):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300)


def test_evaluate_prints_and_writes_a_table1_row(model_dirs, data_dir):
  d = model_dirs["jmvae"]
  proc = run("runners.evaluate", f"--model_dir={d}", f"--data_dir={data_dir}", "--num_test=20",
             "--iterations=2", "--num_samples=2", "--batch_size=10", "--iwae_samples=4", "--noprogress")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "| JMVAE |" in proc.stdout and "K=2" in proc.stdout and "N=2" in proc.stdout
  rec = json.loads((d / "evaluation.json").read_text())
  assert rec["num_examples"] == 20 and rec["iterations"] == 2
  assert set(rec["values"]) == {"image|label", "label|image", "image|image,label", "label|image,label"}
  assert all(v < 0 for v in rec["values"].values())
  assert set(rec["iwae"]) == {"image|label", "label|image", "image,label"}
  assert "| JMVAE |" in (d / "evaluation.md").read_text()


def test_evaluate_several_dirs_writes_the_whole_table(model_dirs, data_dir, tmp_path):
  dirs = ",".join(str(model_dirs[k]) for k in ("jmvae_kl", "hierarchical_jmvae", "cvae_image", "cvae_label"))
  proc = run("runners.evaluate", f"--model_dirs={dirs}", f"--data_dir={data_dir}", f"--output_dir={tmp_path}",
             "--num_test=10", "--iterations=1", "--num_samples=1", "--noprogress")
  assert proc.returncode == 0, proc.stderr[-2000:]
  table = (tmp_path / "table1.md").read_text()
  cvae_row = next(line for line in table.splitlines() if line.startswith("| CVAE |"))
  assert "—" not in cvae_row  # both directions fill one row
  assert "(-448.8)" in cvae_row  # the paper's number beside ours
  assert "| JMVAE-kl |" in table and "| Hierarchical JMVAE |" in table
  assert len(json.loads((tmp_path / "table1.json").read_text())) == 4


@pytest.mark.parametrize("args, message", [
    (["--model_dir=/nonexistent/run"], "no run.json"),
    (["--num_test=99"], "test set has 30 examples"),
])
def test_evaluate_bad_input_is_one_line(model_dirs, data_dir, args, message):
  base = [f"--model_dir={model_dirs['jmvae']}", f"--data_dir={data_dir}"]
  names = {a.split("=")[0] for a in args}
  proc = run("runners.evaluate", *[a for a in base if a.split("=")[0] not in names], *args)
  assert proc.returncode == 2
  assert message in proc.stderr
  assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1


def test_evaluate_a_glob_matching_nothing_fails(model_dirs, data_dir, tmp_path):
  d = str(model_dirs["cvae_image"])
  proc = run("runners.evaluate", f"--model_dirs={d},{model_dirs['jmvae']},{tmp_path}/none*", f"--data_dir={data_dir}")
  assert proc.returncode == 2 and "matches no model directory" in proc.stderr


def test_figures_writes_three_pngs_and_tensorboard_images(model_dirs, data_dir, tmp_path):
  proc = run("runners.figures", f"--data_dir={data_dir}", f"--output_dir={tmp_path}",
             f"--jmvae_dir={model_dirs['jmvae']}", f"--jmvae_kl_dir={model_dirs['jmvae_kl']}",
             f"--hierarchical_jmvae_dir={model_dirs['hierarchical_jmvae']}",
             f"--jmvae_latent2_dir={model_dirs['jmvae']}", f"--jmvae_kl_latent2_dir={model_dirs['jmvae_kl']}",
             "--steps=0,2", "--curve_steps=0,1,2", "--curve_num_test=10", "--num_samples=2",
             "--latent_num_test=30", "--batch_size=10")
  assert proc.returncode == 0, proc.stderr[-2000:]
  for name in ("figure3_jmvae", "figure3_jmvae_kl", "figure3_hierarchical_jmvae", "figure4", "figure5"):
    png = (tmp_path / f"{name}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
  curves = json.loads((tmp_path / "figure4.json").read_text())["curves"]["log p(x~|w)"]
  assert len(set(curves["JMVAE-kl"])) == 1  # flat: no iterative sampling
  assert list((tmp_path / "logs").glob("events.out.tfevents.*"))


def test_figures_bad_input_is_one_line(model_dirs, data_dir, tmp_path):
  proc = run("runners.figures", f"--data_dir={data_dir}", f"--output_dir={tmp_path}",
             f"--jmvae_dir={model_dirs['jmvae_kl']}")
  assert proc.returncode == 2 and "holds a jmvae_kl model, expected jmvae" in proc.stderr
  proc = run("runners.figures", f"--data_dir={data_dir}", f"--output_dir={tmp_path}", "--figures=5",
             f"--jmvae_dir={model_dirs['jmvae']}")
  assert proc.returncode == 2 and "Figure 5 needs" in proc.stderr
