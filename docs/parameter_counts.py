r"""The encoder parameters of JMVAE-kl and hierarchical JMVAE for two and three modalities,
against the paper's counts (section 3.5): 2^(K-1) K M for JMVAE-kl, which needs an encoder for
every non-empty subset of the K modalities, and (K+L-1) M for hierarchical JMVAE, M being the
parameters of one modality's network. Prints the Markdown table of docs/THREE_MODALITIES.md.

  python docs/parameter_counts.py
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def count(variables) -> int:
  import numpy as np  # pylint: disable=g-import-not-at-top

  return int(sum(np.prod(v.shape) for v in variables))


def main():
  from jmvae_tf.core.modalities import Modality  # pylint: disable=g-import-not-at-top
  from jmvae_tf.models import config  # pylint: disable=g-import-not-at-top
  from pipelines.mnist import mnist_modalities  # pylint: disable=g-import-not-at-top

  data = {
    2: (mnist_modalities(), "mnist"),
    3: (
      (
        Modality("digit", "bernoulli", (28, 28, 1), "image"),
        Modality("fashion", "bernoulli", (28, 28, 1), "image"),
        Modality("label", "categorical", (10,)),
      ),
      "mnist_fashion",
    ),
  }
  print(
    "| K | model | modality networks | the paper's count | their parameters | "
    "the count's M = mean network | all encoder parameters |"
  )
  print("|---|---|---|---|---|---|---|")
  for k, (modalities, dataset) in data.items():
    for name in ("jmvae_kl", "hierarchical_jmvae"):
      model = config.build_model(
        config.ModelConfig.make(name, modalities, "mnist_mlp", dataset, latent_dim=64)
      )
      if name == "jmvae_kl":
        encoders = [model.joint_encoder, *model.subset_encoders.values()]
        networks = [b for e in encoders for b in e.branches]
        formula = f"2^(K-1) K = {2 ** (k - 1) * k}"
      else:
        encoders = [model.joint_encoder, *model.upper_encoders]
        networks = list(model.joint_encoder.branches) + [e.body for e in model.upper_encoders]
        formula = f"K + L - 1 = {k + model.num_layers - 1}"
      parameters = count(v for n in networks for v in n.trainable_variables)
      mean = parameters / len(networks)
      everything = count(v for e in encoders for v in e.trainable_variables)
      print(
        f"| {k} | {name} | {len(networks)} | {formula} | {parameters:,} | {mean:,.0f} | "
        f"{everything:,} |"
      )


if __name__ == "__main__":
  main()
