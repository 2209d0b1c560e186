"""jmvae_tf/core/plugins.py: a registry of one kind of plug-in (the project's own entries
imported when first asked for, a plug-in's recorded with its module), what a run.json records
of the plug-ins its names need, and importing them again, in one line where that fails."""

from __future__ import annotations

import sys
import types

import pytest

from jmvae_tf.core import plugins


@pytest.fixture
def registry():
  made = plugins.Registry("test thing", {"builtin": "json:dumps", "direct": 42})
  yield made
  del plugins.REGISTRIES["test thing"]


def test_the_projects_own_are_imported_when_first_asked_for_and_have_no_module(registry):
  import json

  assert registry.names() == ("builtin", "direct")
  assert registry.get("builtin") is json.dumps and registry.get("direct") == 42
  assert registry.plugin_module("builtin") is None and "builtin" in registry


def test_a_plugins_entry_remembers_the_module_that_registered_it(registry):
  assert registry.register("mine", object, "my_pkg.things") is object
  assert registry.names() == ("builtin", "direct", "mine")
  assert registry.plugin_module("mine") == "my_pkg.things"
  registry.register("mine", object, "my_pkg.things")  # the same thing again: accepted
  with pytest.raises(ValueError) as refused:
    registry.register("mine", dict, "other")
  assert str(refused.value) == (
    "test thing 'mine' is registered already (by my_pkg.things); choose another name or pass "
    "replace=True"
  )
  # Its module run again (a notebook cell, a reload) registers anew without a clash.
  registry.register("mine", list, "my_pkg.things")
  assert registry.get("mine") is list
  registry.register("mine", dict, "other", replace=True)
  assert registry.get("mine") is dict and registry.plugin_module("mine") == "other"
  with pytest.raises(ValueError, match="is registered already \\(by jmvae-tf itself\\)"):
    registry.register("direct", 1, "other")
  for bad in ("", "two words", "a:b", 3):
    with pytest.raises(ValueError, match="name must be a non-empty word"):
      registry.register(bad, 1, "other")


def test_an_unknown_name_lists_the_choices_and_how_a_plugin_registers_one(registry):
  with pytest.raises(plugins.PluginError) as refused:
    registry.get("nope")
  assert str(refused.value) == (
    "unknown test thing 'nope'; choose from ['builtin', 'direct'] (a plug-in's must be "
    "registered first: import the module that registers it, or pass --plugins=MODULE to a "
    "runner)"
  )
  assert isinstance(refused.value, ValueError)  # one line at every runner's boundary


def test_a_second_registry_of_the_same_kind_is_refused(registry):
  with pytest.raises(ValueError, match="a registry of test things exists already"):
    plugins.Registry("test thing")


def test_modules_for_lists_only_the_plugins_a_config_uses(registry):
  registry.register("mine", 1, "my_pkg.things")
  registry.register("yours", 2, "your_pkg")
  used = {"test thing": ["builtin", "mine", "mine"], "unknown registry": ["x"]}
  assert plugins.modules_for(used) == {"my_pkg.things": ["test thing mine"]}
  assert plugins.modules_for({"test thing": ["builtin"]}) == {}


def test_calling_module_is_the_module_of_whoever_called_register():
  def register_something():
    return plugins.calling_module()

  assert register_something() == __name__


def test_import_plugins_imports_each_module_or_names_the_one_that_fails(monkeypatch):
  imported = types.ModuleType("fake_plugin_ok")
  monkeypatch.setitem(sys.modules, "fake_plugin_ok", imported)
  plugins.import_plugins(["fake_plugin_ok"], "run.json")  # found: nothing said
  with pytest.raises(plugins.PluginError) as refused:
    plugins.import_plugins(
      ["fake_plugin_ok", "no_such_plugin_module"],
      "run.json",
      {"no_such_plugin_module": ["likelihood kind poisson"]},
    )
  assert str(refused.value) == (
    "run.json needs the plug-in module 'no_such_plugin_module' (likelihood kind poisson), which "
    "cannot be imported (ModuleNotFoundError: No module named 'no_such_plugin_module'); put it "
    "on the Python path"
  )


def test_what_a_script_registered_cannot_be_imported_again(registry):
  needs = {"__main__": ["test thing from_a_notebook"]}
  with pytest.raises(plugins.PluginError, match="needs what a script or notebook registered"):
    plugins.import_plugins(needs, "run.json", needs)
  registry.register("from_a_notebook", 1, "__main__")  # run in this process: found
  plugins.import_plugins(needs, "run.json", needs)
