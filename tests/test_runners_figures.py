"""runners.figures for faces (Figures 6-9) on synthetic faces with a model trained one step
here; the MNIST figures' runs are in test_evaluation_runners.py."""

from __future__ import annotations

import pytest
import tensorflow as tf
from absl import flags
from test_runners_edit import FACES, train_one_step
from tiny_runs import run_module

from pipelines import synthetic_faces
from runners import figures as figures_runner


def run(*args):
  return run_module("runners.figures", *args, timeout=600)


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
    (["--dataset=celeb_a", "--figures=3"], "Figures 3-5 are MNIST's"),
    (["--dataset=mnist", "--figures=9"], "6-9 the faces'"),
    (["--dataset=celeb_a", "--figures=8", "--face_attributes=Smilling"], "unknown attribute"),
    (["--dataset=celeb_a", "--figures=9", "--face_edits=+Hat"], "unknown attribute 'Hat'"),
    (["--dataset=celeb_a", "--figures=12"], "unknown figure"),
  ],
)
def test_bad_face_figure_flags_are_value_errors(args, message):
  with pytest.raises(ValueError, match=message):
    figures_runner.check_args(parse(*args))
