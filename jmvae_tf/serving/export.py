"""Writing a SavedModel for TF Serving: BASE/NAME/VERSION/, written aside and moved into place,
never over an existing version (the signatures are `jmvae_tf.serving.signatures`')."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from typing import List, Optional

import tensorflow as tf

from jmvae_tf.core import files as file_io
from jmvae_tf.core.options import ServingLimits
from jmvae_tf.models import MultimodalVAE, registry
from jmvae_tf.serving.signatures import DEFAULT_SIGNATURE, LIMITS_FILE, ServingModule, limits_json


class ExportError(ValueError):
  """The export cannot be written (e.g. the version already exists)."""


def existing_versions(model_base: str) -> List[int]:
  if not tf.io.gfile.isdir(model_base):
    return []
  return sorted(
    int(n.rstrip("/")) for n in tf.io.gfile.listdir(model_base) if re.fullmatch(r"\d+/?", n)
  )


def next_version(model_base: str) -> int:
  """The next free integer version under BASE/NAME (1 for a new model)."""
  versions = existing_versions(model_base)
  return versions[-1] + 1 if versions else 1


SAVED_MODEL_FILE = "saved_model.pb"


def move_tree(source: str, target: str):
  """Moves the directory `source` to `target` (which must not exist). A local directory is
  renamed, at once. Elsewhere (gs://, ram://, where a directory is a prefix of its files'
  names) each file is renamed on its own, saved_model.pb last: whoever loads the SavedModel
  finds its graph only once the variables and assets are all there."""
  if "://" not in source:
    os.rename(source, target)
    return
  files = []
  for directory, _, names in tf.io.gfile.walk(source):
    # exists(): ram:// lists "assets/.extra" for the files of "assets.extra/" (a prefix match).
    files += [f for f in (os.path.join(directory, n) for n in names) if tf.io.gfile.exists(f)]
  files.sort(key=lambda f: os.path.basename(f) == SAVED_MODEL_FILE)
  for file in files:
    moved = target + file[len(source) :]
    tf.io.gfile.makedirs(os.path.dirname(moved))
    tf.io.gfile.rename(file, moved)
  remove_tree(source)


def remove_tree(path: str):
  """tf.io.gfile.rmtree, also where (ram://) a directory lists the files of a sibling its name
  prefixes ("assets" those of "assets.extra"): the longer names go first."""
  if "://" not in path:
    tf.io.gfile.rmtree(path)
    return
  for directory in sorted((d for d, _, _ in tf.io.gfile.walk(path)), reverse=True):
    with contextlib.suppress(tf.errors.NotFoundError):
      tf.io.gfile.rmtree(directory)


def export(
  model: MultimodalVAE,
  export_base: str,
  name: Optional[str] = None,
  version: Optional[int] = None,
  limits: Optional[ServingLimits] = None,
) -> str:
  """Writes EXPORT_BASE/NAME/VERSION/ (TF Serving's layout); returns that path.

  NAME defaults to the model's registered name (run.json's "model"), VERSION to the next free
  integer from 1. The signatures take the modalities in the data set's order; a registered
  model's config goes to assets.extra/run.json beside them. The SavedModel is written into a
  hidden sibling directory and renamed into place, so TF Serving (which polls the numeric
  directories) never sees half an export; an existing version is never overwritten. `limits`
  (default ServingLimits()) bound what one request may ask; they are written to
  assets.extra/limits.json too. `export_base` may be any tf.io.gfile path (a local folder,
  gs://..., TensorFlow's in-memory ram://).
  """
  config = model.config() if registry.name_of(type(model)) else None
  name = name or (config.model if config else model.name)
  if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
    raise ExportError(f"model name {name!r} must be letters, digits, '_', '.' or '-'")
  model_base = os.path.join(export_base, name)
  if version is None:
    version = next_version(model_base)
  if version < 1:
    raise ExportError(f"version must be a positive integer, got {version}")
  path = os.path.join(model_base, str(version))
  if tf.io.gfile.exists(path):
    raise ExportError(
      f"{path} exists; versions are never overwritten (leave out --version for the next one)"
    )
  module = ServingModule(model, model.data_modalities, limits)
  tf.io.gfile.makedirs(model_base)
  # Written aside under a hidden name, which TF Serving does not poll, then moved into place.
  staging = os.path.join(model_base, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
  try:
    tf.saved_model.save(module, staging, signatures=module.signatures())
    extra = os.path.join(staging, "assets.extra")
    tf.io.gfile.makedirs(extra)
    files = {LIMITS_FILE: limits_json(module.serving_limits)}
    if config is not None:
      files["run.json"] = config.to_json()
    files["signatures.txt"] = f"{DEFAULT_SIGNATURE} = {module.default_signature}\n" + "".join(
      f"{n}: {module.signature_docs[n]}\n" for n in module.function_names
    )
    for name, text in files.items():
      with tf.io.gfile.GFile(os.path.join(extra, name), "w") as f:
        f.write(text)
    if tf.io.gfile.exists(path):  # another export took this version meanwhile
      raise ExportError(f"{path} appeared during the export; not overwritten")
    move_tree(staging, path)
  except (OSError, tf.errors.OpError) as error:  # a full disk or quota, a lost mount
    full = "the disk is full; " if file_io.disk_full(error) else ""
    raise file_io.WriteError(
      f"could not write {path} ({file_io.first_line(error, 120)}): {full}nothing was exported "
      "(its half-written copy is removed)"
    ) from None
  finally:
    if tf.io.gfile.exists(staging):
      remove_tree(staging)
  return path
