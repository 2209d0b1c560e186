"""tf.data input pipelines (MNIST-like data); knows nothing about models."""

from pipelines.idx import IdxError, read_idx
from pipelines.mnist import (
    IDX_FILES,
    NUM_CLASSES,
    DataError,
    ImageLabelArrays,
    LabelledImages,
    MnistArrays,
    Splits,
    binarize,
    eval_dataset,
    load_arrays,
    load_idx_dir,
    load_tfds,
    split,
    steps_per_epoch,
    train_dataset,
)

__all__ = [
    "IDX_FILES",
    "NUM_CLASSES",
    "DataError",
    "IdxError",
    "ImageLabelArrays",
    "LabelledImages",
    "MnistArrays",
    "Splits",
    "binarize",
    "eval_dataset",
    "load_arrays",
    "load_idx_dir",
    "load_tfds",
    "read_idx",
    "split",
    "steps_per_epoch",
    "train_dataset",
]
