"""runners.figures end to end: the MNIST figures (3-5) on models trained a few steps on random
digits, and the faces' (6-9) on synthetic faces with a model trained one step here."""

from __future__ import annotations

import json

import pytest
import tensorflow as tf
from absl import flags
from test_runners_edit import FACES, train_one_step
from tiny_runs import read_only_dir, run_module, train_mnist_runs, write_fake_mnist

from pipelines import synthetic_faces
from runners import figures as figures_runner


def run(*args):
  return run_module("runners.figures", *args, timeout=600)


# --- MNIST: Figures 3-5 ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """A tiny MNIST-format data set: 200 train, 30 test random images."""
  return write_fake_mnist(tmp_path_factory.mktemp("mnist"), num_train=200, num_test=30)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
  return train_mnist_runs(
    tmp_path_factory.mktemp("runs"), ("jmvae", "jmvae_kl", "hierarchical_jmvae")
  )


def test_an_unwritable_output_dir_is_refused_before_any_figure(model_dirs, data_dir, tmp_path):
  """The PNGs would be lost at the end otherwise."""
  read_only = read_only_dir(tmp_path)
  proc = run(
    f"--data_dir={data_dir}",
    f"--output_dir={read_only}",
    f"--jmvae_dir={model_dirs['jmvae']}",
  )
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert f"--output_dir={read_only} cannot be written" in proc.stderr
  assert "Traceback" not in proc.stderr and "wrote" not in proc.stdout


def test_figures_writes_three_pngs_and_tensorboard_images(model_dirs, data_dir, tmp_path):
  proc = run(
    f"--data_dir={data_dir}",
    f"--output_dir={tmp_path}",
    f"--jmvae_dir={model_dirs['jmvae']}",
    f"--jmvae_kl_dir={model_dirs['jmvae_kl']}",
    f"--hierarchical_jmvae_dir={model_dirs['hierarchical_jmvae']}",
    f"--jmvae_latent2_dir={model_dirs['jmvae']}",
    f"--jmvae_kl_latent2_dir={model_dirs['jmvae_kl']}",
    "--steps=0,2",
    "--curve_steps=0,1,2",
    "--curve_num_test=10",
    "--num_samples=2",
    "--latent_num_test=30",
    "--batch_size=10",
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  for name in (
    "figure3_jmvae",
    "figure3_jmvae_kl",
    "figure3_hierarchical_jmvae",
    "figure4",
    "figure5",
  ):
    png = (tmp_path / f"{name}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
  curves = json.loads((tmp_path / "figure4.json").read_text())["curves"]["log p(x~|w)"]
  assert len(set(curves["JMVAE-kl"])) == 1  # flat: no iterative sampling
  assert list((tmp_path / "logs").glob("events.out.tfevents.*"))


def test_figures_bad_input_is_one_line(model_dirs, data_dir, tmp_path):
  proc = run(
    f"--data_dir={data_dir}",
    f"--output_dir={tmp_path}",
    f"--jmvae_dir={model_dirs['jmvae_kl']}",
  )
  assert proc.returncode == 2 and "holds a jmvae_kl model, expected jmvae" in proc.stderr
  proc = run(
    f"--data_dir={data_dir}",
    f"--output_dir={tmp_path}",
    "--figures=5",
    f"--jmvae_dir={model_dirs['jmvae']}",
  )
  assert proc.returncode == 2 and "Figure 5 needs" in proc.stderr


# --- faces: Figures 6-9 -------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp("face_figures")
  synthetic_faces.generate(root / "faces", 20)  # 2 test faces
  return {"faces": root / "faces", "model": train_one_step(root / "kl", FACES, "celeba_conv")}


def test_draws_figures_6_to_9_as_pngs_and_tensorboard_images(setup, tmp_path):
  proc = run(
    "--dataset=celeb_a",
    f"--data_dir={setup['faces']}",
    f"--jmvae_kl_dir={setup['model']}",
    "--figures=6,7,8,9",
    "--steps=0,1",
    "--curve_steps=0,1",
    "--curve_num_test=2",
    "--num_samples=2",
    "--num_faces=2",
    "--num_random=2",
    "--face_attributes=Smiling,-Male",
    "--face_edits=+Smiling,-Smiling",
    f"--output_dir={tmp_path}",
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  names = ["figure6_jmvae_kl", "figure7", "figure8a_jmvae_kl", "figure8b_jmvae_kl"]
  names.append("figure9_jmvae_kl")
  for name in names:
    picture = tf.io.decode_png((tmp_path / f"{name}.png").read_bytes())
    assert picture.shape[0] > 50 and picture.shape[1] > 50, name
  assert "figure 7: JMVAE-kl log p(x~|w): K=0:" in proc.stdout
  tags = set()
  for event_file in tf.io.gfile.glob(str(tmp_path / "logs" / "*")):
    for event in tf.compat.v1.train.summary_iterator(event_file):
      tags.update(v.tag for v in event.summary.value)
  assert {"figure6/jmvae_kl", "figure9/jmvae_kl", "figure7"} <= tags


def parse(*args):
  fv = flags.FlagValues()
  figures_runner.define_flags(fv)
  fv(["figures", "--output_dir=/tmp/unused", *args])
  return fv


@pytest.mark.parametrize(
  "args, message",
  [
    (["--dataset=celeb_a", "--figures=8", "--face_attributes=Smilling"], "unknown attribute"),
    (["--dataset=celeb_a", "--figures=9", "--face_edits=+Hat"], "unknown attribute 'Hat'"),
    (["--dataset=celeb_a", "--figures=12"], "unknown figure"),
  ],
)
def test_bad_face_figure_flags_are_value_errors(args, message):
  with pytest.raises(ValueError, match=message):
    figures_runner.check_args(parse(*args))


def test_figures_of_the_other_family_are_refused(setup, model_dirs):
  """Figures 3-5 need a class as the second modality (MNIST's label), 6-9 attributes: asked
  for a run of the other kind, a ValueError before anything is drawn; the data set is the
  run's (train.json), unless --dataset names another, which must be the run's."""
  with pytest.raises(ValueError, match="Figures 3-5 are for images and classes"):
    figures_runner.check_args(parse(f"--jmvae_kl_dir={setup['model']}", "--figures=3"))
  with pytest.raises(ValueError, match="6-9 for images and attributes"):
    figures_runner.check_args(parse(f"--jmvae_kl_dir={model_dirs['jmvae_kl']}", "--figures=9"))
  with pytest.raises(ValueError, match="trained on --dataset=mnist, not celeb_a"):
    figures_runner.check_args(
      parse(f"--jmvae_kl_dir={model_dirs['jmvae_kl']}", "--dataset=celeb_a", "--figures=3")
    )
  _, _, _, data, _ = figures_runner.check_args(
    parse(f"--jmvae_kl_dir={setup['model']}", "--figures=6")
  )
  assert data[0] == "celeb_a"
