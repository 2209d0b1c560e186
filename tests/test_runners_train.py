"""runners.train: flagfiles, one-line errors before any work, a resumed run end to end, a
diverging run's exit, and SIGINT/SIGTERM."""

import fcntl
import glob
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from absl import flags
from idx_writer import write_idx
from short_runs import all_finite, checkpoints_on_disk
from tiny_runs import read_only_dir, run_module, write_fake_mnist

from jmvae_tf.core.likelihoods import BERNOULLI, CATEGORICAL, GAUSSIAN_FIXED
from jmvae_tf.core.modalities import Modality
from pipelines import mnist
from pipelines.mnist import mnist_modalities
from runners import flagutil
from runners import train as train_runner

ROOT = Path(__file__).resolve().parents[1]
# The caption runs' flagfiles (docs/TEXT.md) hold settings of their own.
CAPTION_FLAGFILES = sorted(glob.glob(str(ROOT / "configs" / "*_captions_*.flags")))
THREE_MODALITY_FLAGFILES = sorted(glob.glob(str(ROOT / "configs" / "mnist_fashion_*.flags")))
FLAGFILES = sorted(
  set(glob.glob(str(ROOT / "configs" / "mnist_*.flags")))
  - set(THREE_MODALITY_FLAGFILES)
  - set(CAPTION_FLAGFILES)
)
FACE_FLAGFILES = sorted(
  set(
    glob.glob(str(ROOT / "configs" / "celeba_*.flags"))
    + glob.glob(str(ROOT / "configs" / "synthetic_faces_*.flags"))
  )
  - set(CAPTION_FLAGFILES)
)
MODELS = ["jmvae", "jmvae_kl", "hierarchical_jmvae", "cvae", "cmma"]


def run(*args, timeout=300):
  return run_module("runners.train", *args, timeout=timeout)


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


@pytest.mark.parametrize("flagfile", THREE_MODALITY_FLAGFILES, ids=lambda f: Path(f).name)
def test_three_modality_flagfiles_hold_the_papers_mnist_settings(flagfile):
  fv = parse(f"--flagfile={flagfile}", "--model_dir=/tmp/unused")
  assert fv.dataset == "mnist_fashion"
  settings = (fv.learning_rate, fv.batch_size, fv.epochs, fv.warmup_epochs, fv.num_train)
  assert settings == (1e-3, 100, 2000, 200, 50000)
  data = types.SimpleNamespace(
    modalities=(
      Modality("digit", BERNOULLI, (28, 28, 1), "image"),
      Modality("fashion", BERNOULLI, (28, 28, 1), "image"),
      Modality("label", CATEGORICAL, (10,)),
    ),
    architecture="mnist_mlp",
    name="mnist_fashion",
  )
  model_config = train_runner.model_config_from_flags(data, fv)
  assert Path(flagfile).name == f"mnist_fashion_{model_config.model}.flags"
  train_runner.train_config_from_flags(fv)  # valid


def test_there_is_a_three_modality_flagfile_for_every_joint_model():
  names = {Path(f).name for f in THREE_MODALITY_FLAGFILES}
  assert names == {f"mnist_fashion_{m}.flags" for m in ("jmvae", "jmvae_kl", "hierarchical_jmvae")}


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
      Modality("image", GAUSSIAN_FIXED, (64, 64, 3), "image"),
      Modality("attributes", GAUSSIAN_FIXED, (40,), "vector"),
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


@pytest.mark.parametrize("flagfile", CAPTION_FLAGFILES, ids=lambda f: Path(f).name)
def test_caption_flagfiles_ask_for_captions_instead_of_the_labels(flagfile):
  """MNIST and the faces with captions (docs/TEXT.md): JMVAE-kl, the caption options, and a
  model config for the caption data set's modalities."""
  from jmvae_tf.core.text import Vocabulary
  from pipelines import captioning

  fv = parse(f"--flagfile={flagfile}", "--model_dir=/tmp/unused")
  assert fv.data_options == ["captions=instead"]
  assert fv.model == "jmvae_kl" and (fv.learning_rate, fv.alpha) == (1e-3, 1.0)
  faces = Path(flagfile).name.startswith("synthetic_faces_")
  assert fv.dataset == ("celeb_a" if faces else "mnist")
  caption = captioning.caption_modality(Vocabulary.build(["a handwritten seven"], 4))
  image = (
    Modality("image", GAUSSIAN_FIXED, (64, 64, 3), "image") if faces else mnist_modalities()[0]
  )
  data = types.SimpleNamespace(
    modalities=(image, caption),
    architecture="celeba_conv" if faces else "mnist_mlp",
    name=fv.dataset,
  )
  model_config = train_runner.model_config_from_flags(data, fv)
  assert [m.name for m in model_config.modalities] == ["image", "caption"]
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


# --- bad input: one line naming it, before anything is written to --model_dir -------------


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
  """MNIST-format IDX files of 200 training and 100 test images of random pixels."""
  return write_fake_mnist(tmp_path_factory.mktemp("mnist"), num_train=200, num_test=100)


def _idx_of_20x20_images(directory):
  rng = np.random.default_rng(0)
  for role, n in (("train", 200), ("test", 100)):
    images = rng.integers(0, 256, (n, 20, 20), dtype=np.uint8)
    write_idx(directory / mnist.IDX_FILES[f"{role}_images"], images)
    write_idx(directory / mnist.IDX_FILES[f"{role}_labels"], rng.integers(0, 10, n, np.uint8))
  return directory


def _idx_gzip_bomb(directory, tiny_mnist):
  """The four files of `tiny_mnist` with the training images followed by 64 MB of zeros:
  64 KB gzipped, as a 2 MB gzip bomb is 2 GB."""
  for name in mnist.IDX_FILES.values():
    (directory / name).write_bytes((tiny_mnist / name).read_bytes())
  path = directory / mnist.IDX_FILES["train_images"]
  content = gzip.decompress(path.read_bytes())
  with gzip.open(path, "wb") as bomb:
    bomb.write(content)
    for _ in range(64):
      bomb.write(bytes(1 << 20))
  return directory


def _idx_with_overflowing_dimensions(directory, tiny_mnist):
  """The training labels' header declares 3 dimensions of 2**32 - 1 (their product
  overflows 64 bits)."""
  for name in mnist.IDX_FILES.values():
    (directory / name).write_bytes((tiny_mnist / name).read_bytes())
  header = bytes([0, 0, 8, 3]) + (2**32 - 1).to_bytes(4, "big") * 3
  (directory / mnist.IDX_FILES["train_labels"]).write_bytes(gzip.compress(header + bytes(200)))
  return directory


def run_in_process(monkeypatch, capsys, *args):
  """runners.train's main in this process (no TensorFlow start-up per run): its exit
  status, stdout and stderr."""
  fv = flags.FlagValues()
  train_runner.define_flags(fv)
  monkeypatch.setattr(train_runner, "FLAGS", fv)
  capsys.readouterr()
  try:
    train_runner.main(flagutil.parse_or_exit(["train.py", *args, "--intra_op_threads=0"], fv))
    status = 0
  except SystemExit as e:
    status = e.code
  captured = capsys.readouterr()
  return status, captured.out, captured.err


BAD_INPUTS = {
  "batch_size_above_the_training_set": (
    ["--batch_size=100000"],
    ["batch size 100000 is larger than the 200 training examples"],
  ),
  "num_train_0": (["--num_train=0"], ["--num_train=0", "not a positive integer"]),
  "num_train_negative": (["--num_train=-1"], ["--num_train=-1", "not a positive integer"]),
  "num_train_above_the_data": (["--num_train=201"], ["need 201 training images, only 200"]),
  "images_20x20": (["DATA_20x20"], ["train-images-idx3-ubyte.gz", "expected 28x28", "20x20"]),
  "idx_gzip_bomb": (
    ["DATA_GZIP_BOMB"],
    ["train-images-idx3-ubyte.gz", "more than 1048576 trailing bytes"],
  ),
  "idx_dimensions_overflow": (
    ["DATA_OVERFLOW"],
    ["train-labels-idx1-ubyte.gz", "dimensions (4294967295,", "more than the"],
  ),
  "clipnorm_negative": (["--clipnorm=-1"], ["clipnorm must be positive, got -1.0"]),
  "adam_epsilon_negative": (["--adam_epsilon=-1"], ["adam_epsilon must be positive"]),
  "learning_rate_0": (["--learning_rate=0"], ["learning_rate must be positive"]),
  "learning_rate_nan": (["--learning_rate=nan"], ["learning_rate must be a finite number"]),
  "learning_rate_inf": (
    ["--learning_rate=inf"],
    ["learning_rate must be a finite number, got inf"],
  ),
  "recalibrate_batchnorm_negative": (["--recalibrate_batchnorm=-1"], ["recalibrate_batchnorm"]),
  "recalibrate_batchnorm_mirrored": (
    ["--recalibrate_batchnorm=5", "--strategy=mirrored"],
    ["recalibrate_batchnorm runs on one replica, not with strategy 'mirrored'"],
  ),
  "alpha_negative": (["--alpha=-1"], ["alpha"]),
  "num_layers_0": (["--model=hierarchical_jmvae", "--num_layers=0"], ["num_layers >= 2, got 0"]),
  "cvae_target_is_condition": (
    ["--model=cvae", "--target=image", "--condition=image"],
    ["target and condition must differ"],
  ),
  "missing_share_1": (["--data_options=missing=label:1"], ["missing=label:1", "[0, 1)"]),
  "missing_unknown_modality": (
    ["--data_options=missing=caption:0.5"],
    ["mnist has no modality 'caption'"],
  ),
  "missing_every_modality": (
    ["--data_options=missing=image:0.5,missing=label:0.5"],
    ["every modality is hidden"],
  ),
  "model_dir_under_a_file": (["MODEL_DIR_UNDER_A_FILE"], ["is not a directory"]),
  "model_dir_read_only": (["MODEL_DIR_READ_ONLY"], ["is read-only for this user"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_before_anything_is_written(
  tmp_path, tiny_mnist, monkeypatch, capsys, case
):
  args, words = BAD_INPUTS[case]
  data_dir, model_dir = tiny_mnist, tmp_path / "run"
  if args == ["DATA_20x20"]:
    args, data_dir = [], _idx_of_20x20_images(tmp_path)
  elif args == ["DATA_GZIP_BOMB"]:
    args, data_dir = [], _idx_gzip_bomb(tmp_path, tiny_mnist)
  elif args == ["DATA_OVERFLOW"]:
    args, data_dir = [], _idx_with_overflowing_dimensions(tmp_path, tiny_mnist)
  elif args == ["MODEL_DIR_UNDER_A_FILE"]:
    (tmp_path / "file").write_text("")
    args, model_dir = [], tmp_path / "file" / "run"
  elif args == ["MODEL_DIR_READ_ONLY"]:
    args, model_dir = [], read_only_dir(tmp_path) / "jmvae_run"
  status, _, err = run_in_process(
    monkeypatch,
    capsys,
    "--flagfile=configs/mnist_jmvae_kl.flags",
    f"--data_dir={data_dir}",
    f"--model_dir={model_dir}",
    "--num_train=200",
    "--epochs=1",
    *args,
  )
  lines = [line for line in err.splitlines() if line.strip() and not unpublished(line)]
  assert status == 2 and len(lines) == 1, err
  assert "error:" in lines[0] and "Traceback" not in err
  for word in words:
    assert word in lines[0], lines[0]
  assert not model_dir.exists()


def test_the_thread_defaults_know_whether_xla_was_asked_for(
  tmp_path, tiny_mnist, monkeypatch, capsys
):
  # Under XLA the auto intra-op threads differ (hardware.decide); the runner must say so.
  from jmvae_tf.training import runtime

  seen = []
  monkeypatch.setattr(runtime, "configure_cpu_threads", lambda *a: seen.append(a) or (0, 0))
  status, _, err = run_in_process(
    monkeypatch,
    capsys,
    "--flagfile=configs/mnist_jmvae_kl.flags",
    f"--data_dir={tiny_mnist}",
    f"--model_dir={tmp_path / 'run'}",
    "--jit_compile=true",
    "--num_train=200",
    "--batch_size=100000",  # refused after the threads are set, before any training
  )
  assert status == 2 and "batch size 100000" in err
  assert seen == [(0, 0, True)]


def test_runner_exits_1_with_one_line_when_the_loss_is_not_finite(tmp_path, tiny_mnist):
  model_dir = tmp_path / "run"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  args = [
    "--flagfile=configs/mnist_jmvae_kl.flags",
    f"--data_dir={tiny_mnist}",
    f"--model_dir={model_dir}",
    "--num_train=200",
    "--epochs=2",
    "--steps_per_execution=1",
    "--learning_rate=1e4",
    "--verbose=2",
  ]
  result = subprocess.run(
    [sys.executable, "-m", "runners.train", *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 1, result.stderr
  assert "Traceback" not in result.stderr, result.stderr
  last = [line for line in result.stderr.splitlines() if line.strip()][-1]
  assert last.startswith("error: training diverged in epoch"), last
  assert "non-finite loss term" in last and "loss=nan" in last, last
  for prefix in checkpoints_on_disk(model_dir):
    assert all_finite(str(model_dir / "ckpt" / prefix))


# --- SIGINT / SIGTERM ------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_runner_with_one_line_and_a_rerun_resumes(
  tmp_path, tiny_mnist, monkeypatch, capsys, signum
):
  """The signal comes once epoch 2 has begun (epoch 1 is saved); the runner stops at the
  next step, says where a rerun starts, exits 128 + the signal, and lets go of the lock."""
  model_dir = tmp_path / "run"
  common = [
    "--flagfile=configs/mnist_jmvae_kl.flags",
    f"--data_dir={tiny_mnist}",
    f"--model_dir={model_dir}",
    "--num_train=200",
    "--batch_size=20",
    "--latent_dim=4",
    "--steps_per_execution=1",
    "--verbose=2",
  ]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
  child = subprocess.Popen(
    [sys.executable, "-m", "runners.train", *common, "--epochs=1000"],
    cwd=ROOT,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  try:
    for line in child.stdout:
      if line.startswith("Epoch 2/"):
        child.send_signal(signum)
        break
    _, err = child.communicate(timeout=120)
  finally:
    if child.poll() is None:
      child.kill()
  assert child.returncode == 128 + signum, err
  assert "Traceback" not in err, err
  last = [line for line in err.splitlines() if line.strip()][-1]
  name = signal.Signals(signum).name
  assert last.startswith(f"interrupted: stopped by {name} in epoch "), last
  start = int(re.search(r"a rerun with this --model_dir starts at epoch (\d+)$", last).group(1))
  assert start >= 2
  assert (model_dir / "ckpt" / f"ckpt-{start - 1}.index").exists()
  assert not (model_dir / "ckpt" / f"ckpt-{start}.index").exists()
  with open(model_dir / ".lock") as lock:  # released
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
  status, out, err = run_in_process(monkeypatch, capsys, *common, f"--epochs={start}")
  assert status == 0, err
  assert f"at epoch {start}" in out and f"Epoch {start}/{start}" in out + err
  assert (model_dir / "ckpt" / f"ckpt-{start}.index").exists()


# --- the data checked on resume (issue 22) ---------------------------------------------------


def test_a_resume_on_other_training_data_is_refused_and_a_moved_copy_resumes(
  tmp_path, tiny_mnist, monkeypatch, capsys
):
  """train.json records a fingerprint of the training examples: resuming with --data_dir at
  other IDX files (here another random digit set, as Fashion-MNIST's files would be) is
  refused, naming the data, with nothing written; the same files copied elsewhere resume."""
  model_dir = tmp_path / "run"
  common = [
    "--flagfile=configs/mnist_jmvae_kl.flags",
    f"--model_dir={model_dir}",
    "--num_train=200",
    "--batch_size=100",
    "--latent_dim=4",
    "--verbose=0",
  ]
  status, _, err = run_in_process(
    monkeypatch, capsys, *common, f"--data_dir={tiny_mnist}", "--epochs=1"
  )
  assert status == 0, err
  recorded = json.loads((model_dir / "train.json").read_text())["train_config"]
  assert recorded["data_fingerprint"] and len(recorded["data_fingerprint"]) == 16
  checkpoint = (model_dir / "ckpt" / "ckpt-1.data-00000-of-00001").read_bytes()
  before = {p: p.stat().st_mtime_ns for p in model_dir.rglob("*") if p.is_file()}
  (tmp_path / "other").mkdir()
  other = write_fake_mnist(tmp_path / "other", num_train=200, num_test=100, seed=1)
  status, _, err = run_in_process(monkeypatch, capsys, *common, f"--data_dir={other}", "--epochs=2")
  lines = [line for line in err.splitlines() if line.strip() and not unpublished(line)]
  assert status == 2 and len(lines) == 1, err
  assert "was trained on other data" in lines[0] and "--data_dir" in lines[0], lines[0]
  assert {p: p.stat().st_mtime_ns for p in model_dir.rglob("*") if p.is_file()} == before
  moved = tmp_path / "moved"
  shutil.copytree(tiny_mnist, moved)
  status, _, err = run_in_process(monkeypatch, capsys, *common, f"--data_dir={moved}", "--epochs=2")
  assert status == 0, err
  assert (model_dir / "ckpt" / "ckpt-2.index").exists()
  assert (model_dir / "ckpt" / "ckpt-1.data-00000-of-00001").read_bytes() == checkpoint


def test_a_ctrl_c_while_tensorflow_loads_is_one_line(tmp_path, tiny_mnist):
  """SIGINT in the first second, while the runner imports TensorFlow (seconds here): one
  line, exit 130, no traceback, nothing written."""
  child = subprocess.Popen(
    [
      sys.executable,
      "-m",
      "runners.train",
      f"--data_dir={tiny_mnist}",
      f"--model_dir={tmp_path / 'run'}",
    ],
    cwd=ROOT,
    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    # As a terminal's Ctrl-C finds it, whatever this process inherited: a suite started in
    # the background of a non-interactive shell ignores SIGINT, and so would the runner.
    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
  )
  time.sleep(1.0)
  child.send_signal(signal.SIGINT)
  _, err = child.communicate(timeout=120)
  assert child.returncode == 130, err
  lines = [line for line in err.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith("interrupted by SIGINT"), err
  assert not (tmp_path / "run").exists()


def unpublished(line: str) -> bool:
  """The line that says fake IDX files are not MNIST's published ones (pipelines/mnist.py)."""
  return line.startswith("warning: --data_dir=") and "not the published MNIST files" in line


def test_an_environments_log_level_does_not_bring_back_tensorflows_noise(tmp_path, tiny_mnist):
  """TF_CPP_MIN_LOG_LEVEL=2 (a common setting) in the environment: the runner's stderr is as
  quiet as without it (no "failed call to cuInit" line); --verbosity still shows it all."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  args = [
    sys.executable,
    "-m",
    "runners.train",
    "--flagfile=configs/mnist_jmvae_kl.flags",
    f"--data_dir={tiny_mnist}",
    "--num_train=200",
    "--batch_size=1000",  # refused once TensorFlow has started and read the data
  ]
  quiet = subprocess.run(
    args + [f"--model_dir={tmp_path / 'a'}"], cwd=ROOT, env=env, capture_output=True, text=True
  )
  assert quiet.returncode == 2
  # The fake IDX files are not MNIST's published ones, which the data set says in one line.
  assert [line for line in quiet.stderr.splitlines() if line.strip()] == [
    f"warning: --data_dir={tiny_mnist}: not the published MNIST files (their checksums "
    "differ); read as they are",
    "error: batch size 1000 is larger than the 200 training examples of mnist",
  ], quiet.stderr
  loud = subprocess.run(
    args + [f"--model_dir={tmp_path / 'b'}", "--verbosity=0"],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
  )
  assert loud.returncode == 2 and len(loud.stderr.splitlines()) > 1
