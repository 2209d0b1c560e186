"""The model directory (jmvae_tf/run_dir.py): which runs it refuses, what it records, how it
finds, checks and restores checkpoints."""

import os
import types

import pytest
from absl import flags
from model_configs import mnist_config
from tiny_runs import train_tiny

from jmvae_tf import config, run_dir
from pipelines.mnist import mnist_modalities
from runners import train as train_runner

# --- refusing another model ------------------------------------------------------------------


def snapshot(directory):
  """{path: (size, mtime)} of every file under directory."""
  return {
    os.path.join(root, f): (
      os.path.getsize(os.path.join(root, f)),
      os.path.getmtime(os.path.join(root, f)),
    )
    for root, _, files in os.walk(directory)
    for f in files
  }


def config_from_flags(*args):
  """runners.train's model config from flags (all models' flags are defined)."""
  fv = flags.FlagValues()
  train_runner.define_flags(fv)
  fv(["train", "--model_dir=unused", *args])
  mnist = types.SimpleNamespace(
    modalities=mnist_modalities(), architecture="mnist_mlp", name="mnist"
  )
  return train_runner.model_config_from_flags(mnist, fv)


def test_resume_of_jmvae_ignores_options_it_does_not_use(tmp_path):
  """A JMVAE run resumes with the same config, also when a flag it does not use (alpha)
  differs: that flag is not part of its config."""
  train_tiny(tmp_path, "jmvae")
  assert config.ModelConfig.from_json((tmp_path / run_dir.RUN_FILE).read_text()) == (
    mnist_config("jmvae", latent_dim=4)
  )
  before = snapshot(tmp_path)
  checkpoint = run_dir.check_model_dir(str(tmp_path), mnist_config("jmvae", latent_dim=4))
  assert checkpoint == run_dir.find_checkpoint(str(tmp_path)) and checkpoint.endswith("ckpt-1")
  with_alpha = config_from_flags("--model=jmvae", "--latent_dim=4", "--alpha=0.1")
  assert with_alpha == mnist_config("jmvae", latent_dim=4)
  assert run_dir.check_model_dir(str(tmp_path), with_alpha) == checkpoint
  # another model, or another latent size, is refused naming only what differs
  with pytest.raises(run_dir.RunDirError) as refused:
    run_dir.check_model_dir(str(tmp_path), mnist_config("jmvae_kl", latent_dim=4))
  message = str(refused.value)
  assert "(--model 'jmvae' vs 'jmvae_kl'; saved vs asked)" in message
  assert "alpha" not in message and "latent_dim" not in message
  with pytest.raises(run_dir.RunDirError, match="--latent_dim 4 vs 8;"):
    run_dir.check_model_dir(str(tmp_path), mnist_config("jmvae", latent_dim=8))
  assert snapshot(tmp_path) == before


def test_resume_of_jmvae_kl_is_refused_for_another_alpha(tmp_path):
  """JMVAE-kl uses alpha: a run with alpha 1 is not resumed with alpha 0.1 (and the directory
  is left as it was), but is with alpha 1."""
  train_tiny(tmp_path, "jmvae_kl", alpha=1.0)
  before = snapshot(tmp_path)
  asked = config_from_flags("--model=jmvae_kl", "--latent_dim=4", "--alpha=0.1")
  with pytest.raises(run_dir.RunDirError) as refused:
    run_dir.check_model_dir(str(tmp_path), asked)
  message = str(refused.value)
  assert "--alpha 1.0 vs 0.1" in message and "different model" in message
  assert "latent_dim" not in message and "--model " not in message
  same = mnist_config("jmvae_kl", latent_dim=4, alpha=1.0)
  assert run_dir.check_model_dir(str(tmp_path), same).endswith("ckpt-1")
  assert snapshot(tmp_path) == before


def test_check_model_dir_of_a_fresh_directory(tmp_path):
  """No checkpoint: nothing to resume, any config is accepted; a file is not a directory."""
  made = mnist_config("jmvae", latent_dim=4)
  assert run_dir.check_model_dir(str(tmp_path / "new"), made) is None
  (tmp_path / "file").write_text("x")
  with pytest.raises(run_dir.RunDirError, match="not a directory"):
    run_dir.check_model_dir(str(tmp_path / "file"), made)
