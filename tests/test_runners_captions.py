"""runners.captions end to end (`python -m runners.captions`) on a JMVAE-kl that runners.train
trains a few steps (in this process) on a small slice of the real MNIST with captions instead of
labels: the two figures and captions.md, a bad caption refused by name, and a run without text
refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf
from absl import flags
from idx_writer import write_idx
from tiny_runs import run_module, train_tiny

from jmvae_tf.inspection import captions
from pipelines import mnist, registry
from runners import captions as captions_runner
from runners import flagutil
from runners import train as train_runner

NUM_TRAIN, NUM_TEST = 200, 100
FILES = ("captions_from_image.png", "image_from_captions.png", "captions.md")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, mnist_slice):
  """The first NUM_TRAIN training and NUM_TEST test digits of the real MNIST, as IDX files."""
  directory = tmp_path_factory.mktemp("mnist_slice")
  train, test = mnist_slice
  for role, part, n in (("train", train, NUM_TRAIN), ("test", test, NUM_TEST)):
    write_idx(directory / mnist.IDX_FILES[f"{role}_images"], part.images[:n])
    write_idx(directory / mnist.IDX_FILES[f"{role}_labels"], part.labels[:n])
  return directory


def run_in_process(monkeypatch, capsys, *args):
  """runners.captions' main in this process (no TensorFlow start-up): its exit status, stdout
  and stderr."""
  fv = flags.FlagValues()
  captions_runner.define_flags(fv)
  monkeypatch.setattr(captions_runner, "FLAGS", fv)
  capsys.readouterr()
  try:
    captions_runner.main(flagutil.parse_only(["captions.py", *args], fv))
    status = 0
  except SystemExit as e:
    status = e.code
  captured = capsys.readouterr()
  return status, captured.out, captured.err


def train(monkeypatch, capsys, *args):
  """runners.train's main in this process (as tests/test_runners_train.py runs it)."""
  fv = flags.FlagValues()
  train_runner.define_flags(fv)
  monkeypatch.setattr(train_runner, "FLAGS", fv)
  try:
    train_runner.main(flagutil.parse_only(["train.py", *args, "--intra_op_threads=0"], fv))
  except SystemExit as e:
    pytest.fail(f"runners.train exited {e.code}: {capsys.readouterr().err[-3000:]}")


def test_captions_of_a_trained_run_end_to_end(tmp_path, data_dir, monkeypatch, capsys):
  model_dir, out = tmp_path / "run", tmp_path / "out"
  common = [f"--data_dir={data_dir}", f"--model_dir={model_dir}"]
  train(
    monkeypatch,
    capsys,
    *common,
    "--dataset=mnist",
    "--data_options=captions=instead",
    "--model=jmvae_kl",
    "--latent_dim=4",
    f"--num_train={NUM_TRAIN}",
    "--batch_size=50",
    "--epochs=1",
    "--warmup_epochs=0",
    "--steps_per_execution=4",
    "--verbose=0",
  )

  proc = run_module(
    "runners.captions",
    *common,
    f"--output_dir={out}",
    "--captions=a handwritten seven,The digit 2!",
    "--num_examples=4",
    "--num_images=3",
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  for name in FILES:
    assert f"wrote {out / name}" in proc.stdout
  for name in FILES[:2]:
    picture = tf.io.decode_png((out / name).read_bytes())
    assert picture.shape[0] > 100 and picture.shape[1] > 200, name
  text = (out / "captions.md").read_text()
  assert captions.SOURCE in text.lower()
  assert f"agreement with the true labels on the {NUM_TEST} real test captions: 1.0000" in text
  data = registry.make_dataset("mnist", str(data_dir), options=["captions=instead"])
  batch = next(iter(data.eval_dataset("test", 4, num_examples=4)))
  truth = next(m for m in data.modalities if m.name == "caption").text.decode_numpy(
    batch["caption"]
  )
  rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
  assert [row.split("|")[2].strip() for row in rows] == truth

  # Without --captions: the first test captions; the same files again.
  status, stdout, stderr = run_in_process(
    monkeypatch, capsys, *common, f"--output_dir={tmp_path / 'default'}", "--num_examples=2"
  )
  assert status == 0, stderr
  assert sorted(p.name for p in (tmp_path / "default").iterdir()) == sorted(FILES)

  # A caption of only unknown words: one line naming it, nothing written.
  status, _, stderr = run_in_process(
    monkeypatch, capsys, *common, f"--output_dir={tmp_path / 'bad'}", "--captions=a two,zebra"
  )
  assert status == 2
  assert stderr.strip().splitlines() == [
    "error: caption 2: the caption 'zebra' has only words the vocabulary does not have"
  ]
  assert not (tmp_path / "bad").exists()


def test_a_run_without_text_is_refused_in_one_line(tmp_path, data_dir, monkeypatch, capsys):
  model_dir = tmp_path / "plain"
  train_tiny(model_dir, "jmvae")  # image and label
  status, _, stderr = run_in_process(
    monkeypatch,
    capsys,
    f"--model_dir={model_dir}",
    f"--data_dir={data_dir}",
    f"--output_dir={tmp_path / 'out'}",
  )
  assert status == 2
  (line,) = stderr.strip().splitlines()
  assert line.startswith(f"error: --model_dir={model_dir} has no text modality")
  assert "(its modalities: image, label)" in line and "captions=instead" in line
  assert not (tmp_path / "out").exists()


def test_flags_default_and_bounds():
  fv = flags.FlagValues()
  captions_runner.define_flags(fv)
  fv(["captions", "--model_dir=m", "--output_dir=o"])
  assert (fv.num_examples, fv.num_images, fv.seed, fv.captions) == (8, 6, 0, [])
  with pytest.raises(flags.IllegalFlagValueError):
    fv(["captions", "--model_dir=m", "--output_dir=o", "--num_images=0"])
  assert Path(captions_runner.__file__).name == "captions.py"
