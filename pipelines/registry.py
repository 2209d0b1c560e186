"""The data sets `--dataset` can name, importable without TensorFlow (the runners define their
flags from it, so a bad flag is reported before TensorFlow starts).

The project's data sets are entries here, `"name": "module:Class"`, each class a
`jmvae_tf.core.data.DataSet`; a plug-in adds its own with `register_dataset` (its module is
recorded in the run.json of a model trained on it, and imported again when that run is read).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

from jmvae_tf.core import plugins

DATASETS = plugins.Registry(
  "data set",
  {
    "mnist": "pipelines.mnist:MnistDataSet",
    "fashion_mnist": "pipelines.mnist:FashionMnistDataSet",
    "mnist_fashion": "pipelines.mnist_fashion:MnistFashionDataSet",
    "celeb_a": "pipelines.celeba:CelebADataSet",
    "files": "pipelines.files:FilesDataSet",
  },
)


def register_dataset(name: str, dataset_class, replace: bool = False):
  """Adds a data set under `name` (--dataset, run.json's "dataset"): `dataset_class` a
  jmvae_tf.core.data.DataSet subclass taking (data_dir, num_train, validation, **its
  options), or "module:Class". Returns what it was given."""
  return DATASETS.register(name, dataset_class, plugins.calling_module(), replace=replace)


def dataset_names() -> Tuple[str, ...]:
  """Every registered data set, the project's first."""
  return DATASETS.names()


def dataset_class(name: str):
  return DATASETS.get(name)


def make_dataset(
  name: str,
  data_dir: Optional[str] = None,
  num_train: Optional[int] = None,
  validation: bool = False,
  options: Sequence[str] = (),
):
  """The data set `name`, its files read and checked (a DataError, one line, if not)."""
  from jmvae_tf.core.data import parse_options  # pylint: disable=g-import-not-at-top

  return dataset_class(name)(
    data_dir=data_dir, num_train=num_train, validation=validation, **parse_options(options)
  )
