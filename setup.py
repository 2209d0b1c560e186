"""jmvae-tf: Joint Multimodal VAEs in TensorFlow 2 / tf-keras / TFP."""

from setuptools import find_packages, setup

# One stack that installs and works together (see BUILD.md for why tf-keras, not Keras 3).
INSTALL_REQUIRES = [
  "tensorflow==2.21.0",
  "tf-keras==2.21.0",
  "tensorflow-probability==0.25.0",
  "tensorflow-datasets==4.9.10",
  "tensorboard==2.21.0",  # tf.summary needs it; TF 2.21 no longer installs it
  # TFDS's download path imports it (through etils.epath) but does not install it.
  "importlib_resources>=6,<7",
  "absl-py>=2.1,<3",
  "numpy>=1.26,<3",
  "matplotlib>=3.8,<4",  # the paper's figures
]

setup(
  name="jmvae-tf",
  version="0.1.0",
  description=(
    "JMVAE, JMVAE-kl, hierarchical JMVAE, CVAE and CMMA in TensorFlow 2 with tf.data "
    "and TFP decoders"
  ),
  packages=find_packages(
    include=["jmvae_tf", "jmvae_tf.*", "pipelines", "pipelines.*", "runners", "runners.*"]
  ),
  python_requires=">=3.10,<3.14",
  install_requires=INSTALL_REQUIRES,
  extras_require={"test": ["pytest>=8", "pytest-xdist>=3.5", "ruff==0.17.6"]},
)
