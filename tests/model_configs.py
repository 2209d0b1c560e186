"""Test helper: the ModelConfig of a model on MNIST's modalities and networks, as
runners.train makes it for --dataset=mnist."""

from jmvae_tf.models import config
from pipelines.mnist import mnist_modalities


def mnist_config(model: str, **options) -> config.ModelConfig:
  return config.ModelConfig.make(model, mnist_modalities(), "mnist_mlp", "mnist", **options)
