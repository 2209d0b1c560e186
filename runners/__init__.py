"""Command-line entry points: they parse flags and call the library."""

import os

# The project's Keras is tf-keras (BUILD.md). Said before TensorFlow is imported, this keeps
# TensorFlow from loading Keras 3 as well (about 0.9 s of every command's start-up on the
# project's 2-core Xeon); a value the user set is kept.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
