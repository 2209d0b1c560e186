"""pipelines/registry.py: the data sets --dataset can name, each class registered under its own
name, and make_dataset handing the runner's flags (data_dir, num_train, validation,
--data_options) to the data set's constructor."""

from __future__ import annotations

import pytest
from tiny_runs import write_fake_mnist

from jmvae_tf.core.data import DataError
from pipelines import registry
from pipelines.celeba import CelebADataSet
from pipelines.mnist import FashionMnistDataSet, MnistDataSet
from pipelines.mnist_fashion import MnistFashionDataSet


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """MNIST-format files of 200 training and 30 test random images."""
  return write_fake_mnist(tmp_path_factory.mktemp("mnist"), num_train=200, num_test=30)


def test_dataset_names_and_their_classes():
  # The project's own first (a plug-in's, registered in this process, after them).
  assert registry.dataset_names()[:4] == ("mnist", "fashion_mnist", "mnist_fashion", "celeb_a")
  classes = {
    "mnist": MnistDataSet,
    "fashion_mnist": FashionMnistDataSet,
    "mnist_fashion": MnistFashionDataSet,
    "celeb_a": CelebADataSet,
  }
  for name in classes:
    assert registry.dataset_class(name) is classes[name]
    assert classes[name].name == name  # what run.json records is what --dataset takes


def test_an_unknown_data_set_is_refused_listing_the_names():
  with pytest.raises(ValueError) as refused:
    registry.dataset_class("svhn")
  assert str(refused.value).startswith(
    "unknown data set 'svhn'; choose from ['mnist', 'fashion_mnist', 'mnist_fashion', 'celeb_a'"
  )
  assert str(refused.value).endswith(
    "(a plug-in's must be registered first: import the module that registers it, or pass "
    "--plugins=MODULE to a runner)"
  )


def test_make_dataset_passes_the_directory_and_the_split(data_dir):
  data = registry.make_dataset("mnist", data_dir=str(data_dir))
  assert isinstance(data, MnistDataSet)
  assert [data.num_examples(s) for s in ("train", "validation", "test")] == [200, 0, 30]
  held = registry.make_dataset("mnist", data_dir=str(data_dir), num_train=150, validation=True)
  assert [held.num_examples(s) for s in ("train", "validation", "test")] == [150, 50, 30]
  assert held.held_out_split() == "validation"
  fashion = registry.make_dataset("fashion_mnist", data_dir=str(data_dir), num_train=20)
  assert type(fashion) is FashionMnistDataSet and fashion.num_examples("train") == 20


def test_make_dataset_passes_the_data_options(data_dir):
  """MNIST's options are its captions': another given reaches its check, and a malformed one
  the parser's."""
  with pytest.raises(
    DataError,
    match=r"^--data_options: mnist has no option 'crop' \(it has: caption_tokens, "
    r"caption_vocabulary, captions, missing\)$",
  ):
    registry.make_dataset("mnist", data_dir=str(data_dir), options=["crop=center"])
  with pytest.raises(DataError, match="'crop' is not key=value"):
    registry.make_dataset("mnist", data_dir=str(data_dir), options=["crop"])
  with pytest.raises(DataError, match="does not exist"):
    registry.make_dataset("mnist", data_dir=str(data_dir / "missing"))
