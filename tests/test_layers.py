"""The layers docs/ARCHITECTURE.md draws, held against the code's imports (read with ast):
each package of jmvae_tf imports only the layers below it, nothing of jmvae_tf imports
pipelines or runners, pipelines import only jmvae_tf.core, consumers reach a model only
through jmvae_tf.models' API, no library code reads flags, nothing reads a modality's family
off its shape's rank, and tf-keras' private attributes are touched in models/keras_internals.py
alone."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from jmvae_tf import models

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "jmvae_tf"

# Each package and the packages of jmvae_tf it may import (besides itself).
MAY_IMPORT = {
  "core": set(),
  "networks": {"core"},
  "models": {"core", "networks"},
  "evaluation": {"core", "models"},
  "serving": {"core", "models"},
  "inspection": {"core", "models", "evaluation"},
  "training": {"core", "models", "inspection"},
}
# What consumers may take of the models package: its API (the names it exports), the registry
# and the config; not the base class's module, the steps or the tf-keras internals.
MODEL_API_MODULES = {"jmvae_tf.models", "jmvae_tf.models.registry", "jmvae_tf.models.config"}
MODEL_API_NAMES = {f"jmvae_tf.models.{name}" for name in models.__all__}


def modules():
  return sorted(p for p in LIBRARY.rglob("*.py") if p.name != "__init__.py" or p.parent != LIBRARY)


def is_main_block(node) -> bool:
  """`if __name__ == "__main__":`: what runs only when the file is run as a command."""
  test = getattr(node, "test", None)
  return (
    isinstance(node, ast.If)
    and isinstance(test, ast.Compare)
    and isinstance(test.left, ast.Name)
    and test.left.id == "__name__"
  )


def imported(path: Path, commands: bool = True):
  """Every module `path` imports (from X import y counts X.y where y is a module); without
  `commands`, those of its `if __name__ == "__main__":` block left out."""
  tree = ast.parse(path.read_text())
  if not commands:
    tree.body = [node for node in tree.body if not is_main_block(node)]
  out = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out += [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      out.append(node.module)
      out += [f"{node.module}.{alias.name}" for alias in node.names]
  return out


def package_of(path: Path) -> str:
  return path.relative_to(LIBRARY).parts[0]


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_module_imports_only_the_layers_below_it(path):
  package = package_of(path)
  allowed = MAY_IMPORT[package] | {package}
  for name in imported(path):
    parts = name.split(".")
    assert parts[0] not in ("pipelines", "runners"), f"{path.name} imports {name}"
    if parts[0] != "jmvae_tf" or len(parts) < 2 or parts[1] not in MAY_IMPORT:
      continue
    assert parts[1] in allowed, f"{package}/{path.name} imports {name}: a layer above it"
    if parts[1] == "models" and package != "models":
      module = ".".join(parts[:3])
      assert module in MODEL_API_MODULES | MODEL_API_NAMES or name in MODEL_API_MODULES, (
        f"{package}/{path.name} imports {name}: consumers use the model's API"
      )
      assert module not in {
        "jmvae_tf.models.base",
        "jmvae_tf.models.steps",
        "jmvae_tf.models.keras_internals",
      }, f"{package}/{path.name} imports {module}"


def test_pipelines_import_only_the_vocabulary_of_the_library():
  """As a data set needs: jmvae_tf.core, never the models, training or runners. The one
  command left in pipelines/ (the old name of runners.synthetic_faces) hands over to its
  runner from its `__main__` block, which is not the module's code."""
  for path in sorted((ROOT / "pipelines").glob("*.py")):
    for name in imported(path, commands=False):
      parts = name.split(".")
      assert parts[0] != "runners", f"{path.name} imports {name}"
      if parts[0] == "jmvae_tf" and len(parts) > 1 and parts[1] in MAY_IMPORT:
        assert parts[1] == "core", f"{path.name} imports {name}: pipelines use jmvae_tf.core"


def source_files(*folders):
  return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def test_no_library_or_pipeline_code_reads_flags():
  for path in source_files("jmvae_tf", "pipelines"):
    assert not re.search(r"\bFLAGS\b", path.read_text()), path


def test_nothing_reads_a_modalitys_family_off_its_rank():
  for path in source_files("jmvae_tf", "runners"):
    text = path.read_text()
    assert "is_image" not in text, path
    for line in text.splitlines():
      # A decision on a modality's rank: len(m.shape) / len(modality.shape) == ...
      assert not re.search(r"len\((m|modality|spec|s)\.shape\)", line), f"{path}: {line}"


def test_tf_keras_private_attributes_are_touched_in_one_place():
  private = re.compile(r"\b(?!self\b|sys\b)[a-z_]+\._[a-z][a-z_]*")
  for path in source_files("jmvae_tf", "runners", "pipelines"):
    code = [line.split("#")[0] for line in path.read_text().splitlines()]
    found = [line for line in code if private.search(line) and '"' not in line]
    if path.name == "keras_internals.py":
      assert found  # the one place
    else:
      assert not found, f"{path}: {found}"
