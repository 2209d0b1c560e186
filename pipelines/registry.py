"""The data sets `--dataset` can name, importable without TensorFlow (the runners
define their flags from it, so a bad flag is reported before TensorFlow starts).

Adding a data set: one line here, `"name": "module:Class"`, the class a
`pipelines.datasets.DataSet`.
"""

from __future__ import annotations

import importlib
from typing import Optional, Sequence

DATASETS = {
  "mnist": "pipelines.mnist:MnistDataSet",
  "fashion_mnist": "pipelines.mnist:FashionMnistDataSet",
  "mnist_fashion": "pipelines.mnist_fashion:MnistFashionDataSet",
  "celeb_a": "pipelines.celeba:CelebADataSet",
}
DATASET_NAMES = tuple(DATASETS)


def dataset_class(name: str):
  if name not in DATASETS:
    raise ValueError(f"unknown data set {name!r}; choose from {sorted(DATASETS)}")
  module, cls = DATASETS[name].split(":")
  return getattr(importlib.import_module(module), cls)


def make_dataset(
  name: str,
  data_dir: Optional[str] = None,
  num_train: Optional[int] = None,
  validation: bool = False,
  options: Sequence[str] = (),
):
  """The data set `name`, its files read and checked (a DataError, one line, if not)."""
  from pipelines import datasets  # pylint: disable=g-import-not-at-top

  return dataset_class(name)(
    data_dir=data_dir, num_train=num_train, validation=validation, **datasets.parse_options(options)
  )
