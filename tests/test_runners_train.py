"""runners.train: flagfiles, one-line errors before any work, and a resumed run end to end."""

import glob
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from absl import flags

from jmvae_tf.modalities import GAUSSIAN_FIXED, Modality, mnist_modalities
from runners import train as train_runner

ROOT = Path(__file__).resolve().parents[1]
FLAGFILES = sorted(glob.glob(str(ROOT / "configs" / "mnist_*.flags")))
FACE_FLAGFILES = sorted(
  glob.glob(str(ROOT / "configs" / "celeba_*.flags"))
  + glob.glob(str(ROOT / "configs" / "synthetic_faces_*.flags"))
)
MODELS = ["jmvae", "jmvae_kl", "hierarchical_jmvae", "cvae", "cmma"]


def run(*args, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run(
    [sys.executable, "-m", "runners.train", *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def parse(*args):
  fv = flags.FlagValues()
  train_runner.define_flags(fv)
  fv(["train", *args])
  return fv


def test_there_is_a_flagfile_for_every_model():
  names = {Path(f).name for f in FLAGFILES}
  for model in MODELS:
    assert f"mnist_{model}.flags" in names
  faces = {Path(f).name for f in FACE_FLAGFILES}
  for prefix in ("celeba", "synthetic_faces"):
    for model in MODELS + ["cvae_attributes_given_image", "cmma_attributes_given_image"]:
      assert f"{prefix}_{model}.flags" in faces


@pytest.mark.parametrize("flagfile", FLAGFILES, ids=lambda f: Path(f).name)
def test_flagfiles_parse_with_the_papers_settings(flagfile):
  fv = parse(f"--flagfile={flagfile}", "--model_dir=/tmp/unused")
  assert (fv.learning_rate, fv.batch_size, fv.epochs, fv.warmup_epochs, fv.num_train) == (
    1e-3,
    100,
    2000,
    200,
    50000,
  )
  mnist = types.SimpleNamespace(
    modalities=mnist_modalities(), architecture="mnist_mlp", name="mnist"
  )
  model_config = train_runner.model_config_from_flags(mnist, fv)
  assert Path(flagfile).name.startswith(f"mnist_{model_config.model}")
  train_runner.train_config_from_flags(fv)  # valid
  # a later flag overrides the flagfile
  assert parse(f"--flagfile={flagfile}", "--model_dir=x", "--epochs=3").epochs == 3


@pytest.mark.parametrize("flagfile", FACE_FLAGFILES, ids=lambda f: Path(f).name)
def test_face_flagfiles_parse_with_their_settings(flagfile):
  fv = parse(f"--flagfile={flagfile}", "--model_dir=/tmp/unused")
  name = Path(flagfile).name
  assert fv.dataset == "celeb_a" and fv.num_train is None
  if name.startswith("celeba_"):  # the paper's CelebA settings (section 4.3)
    settings = (fv.learning_rate, fv.batch_size, fv.epochs, fv.warmup_epochs, fv.latent_dim)
    assert settings == (1e-4, 100, 50, 20, 128)
  celeb_a = types.SimpleNamespace(
    modalities=(
      Modality("image", GAUSSIAN_FIXED, (64, 64, 3)),
      Modality("attributes", GAUSSIAN_FIXED, (40,)),
    ),
    architecture="celeba_conv",
    name="celeb_a",
  )
  model_config = train_runner.model_config_from_flags(celeb_a, fv)
  stem = name.split("_", 1)[1] if name.startswith("celeba_") else name[len("synthetic_faces_") :]
  assert stem.startswith(model_config.model)
  if model_config.model in ("cvae", "cmma"):
    target = "attributes" if "attributes_given_image" in stem else "image"
    assert (fv.target, fv.condition) == (target, ({"image", "attributes"} - {target}).pop())
  train_runner.train_config_from_flags(fv)  # valid


def _one_line_error(result, *words, only_line=False):
  """Exit status 2 and the error on one line (the last; TensorFlow's own start-up
  log lines may precede it once TensorFlow has been imported)."""
  assert result.returncode == 2, result.stderr
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  assert "Traceback" not in result.stderr, result.stderr
  if only_line:
    assert len(lines) == 1, result.stderr
  assert "error:" in lines[-1]
  for w in words:
    assert w in lines[-1], lines[-1]


def test_unknown_flag_in_a_flagfile(tmp_path):
  flagfile = tmp_path / "bad.flags"
  flagfile.write_text("--model=jmvae\n--learning_rat=0.1\n")
  result = run(f"--flagfile={flagfile}", f"--model_dir={tmp_path / 'run'}")
  _one_line_error(result, "learning_rat", only_line=True)  # reported before TensorFlow starts
  assert not (tmp_path / "run").exists()


def test_data_dir_without_the_idx_files(tmp_path):
  (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
  result = run(
    "--flagfile=configs/mnist_jmvae.flags",
    f"--data_dir={tmp_path}",
    f"--model_dir={tmp_path / 'run'}",
  )
  _one_line_error(result, str(tmp_path), "t10k-labels-idx1-ubyte.gz")
  assert not (tmp_path / "run").exists()


def test_truncated_idx_file(tmp_path, mnist_dir):
  for name in os.listdir(mnist_dir):
    (tmp_path / name).write_bytes((mnist_dir / name).read_bytes())
  labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
  labels.write_bytes(labels.read_bytes()[:-40])
  result = run(
    "--flagfile=configs/mnist_jmvae.flags",
    f"--data_dir={tmp_path}",
    f"--model_dir={tmp_path / 'run'}",
  )
  _one_line_error(result, "t10k-labels-idx1-ubyte.gz")
  assert not (tmp_path / "run").exists()


def test_train_then_resume_then_refuse_another_model(tmp_path, mnist_dir):
  model_dir = tmp_path / "run"
  common = [
    "--flagfile=configs/mnist_jmvae_kl.flags",
    f"--data_dir={mnist_dir}",
    f"--model_dir={model_dir}",
    "--num_train=500",
    "--eval_every=1",
    "--verbose=2",
    "--steps_per_execution=5",
  ]
  first = run(*common, "--epochs=1")
  assert first.returncode == 0, first.stderr
  assert (
    sorted(os.listdir(model_dir / "ckpt"))[0] == "checkpoint"
    and (model_dir / "ckpt" / "ckpt-1.index").exists()
  )
  assert (model_dir / "flags.txt").read_text().count("--model=jmvae_kl") == 1
  # flags.txt holds this runner's flags only, and reproduces the run as a --flagfile.
  written = (model_dir / "flags.txt").read_text().splitlines()
  mine = flags.FlagValues()
  train_runner.define_flags(mine)
  assert written and all(
    line.split("=")[0].lstrip("-").removeprefix("no") in mine for line in written
  )
  again = parse(f"--flagfile={model_dir / 'flags.txt'}")
  given = parse(*common, "--epochs=1")
  assert train_runner.train_config_from_flags(again) == train_runner.train_config_from_flags(given)
  assert [again[n].value for n in ("model", "alpha", "num_train", "data_dir")] == [
    given[n].value for n in ("model", "alpha", "num_train", "data_dir")
  ]
  second = run(*common, "--epochs=2")
  assert second.returncode == 0, second.stderr
  out = second.stdout + second.stderr  # Keras may log through absl (stderr)
  assert "Resuming" in out and "Epoch 2/2" in out and "Epoch 1/2" not in out
  listing = sorted(os.listdir(model_dir / "ckpt"))
  other = run(
    "--flagfile=configs/mnist_cmma.flags", f"--data_dir={mnist_dir}", f"--model_dir={model_dir}"
  )
  _one_line_error(other, "different model", "jmvae_kl", "cmma")
  assert sorted(os.listdir(model_dir / "ckpt")) == listing
