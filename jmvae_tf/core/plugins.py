"""Plug-in points: one registry per kind of thing a user may add from their own code, with no
edit to the package: likelihood kinds, network families, architectures, the networks of a
family, models and data sets. Imports no TensorFlow.

A registry maps names to things. The project's own are registered lazily ("module:attribute",
imported when first asked for); a user's are registered by their own module when it is
imported (`register`), and the registry remembers that module. A run's `run.json` lists the
plug-in modules its names came from (`modules_for`), and reading it imports them again
(`import_plugins`), so a run that uses a plug-in loads back wherever the plug-in is importable
and fails in one line naming it where it is not. Runners import plug-in modules named by
`--plugins=module,...` before they define their flags.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

# Every registry, by what it holds (run.json's "plugins" names them so).
REGISTRIES: Dict[str, "Registry"] = {}

# A script or notebook: what it registers cannot be imported again elsewhere.
MAIN_MODULE = "__main__"


class PluginError(ValueError):
  """A name no plug-in has registered, or a plug-in module that cannot be imported."""


def calling_module(depth: int = 1) -> str:
  """The module of the code `depth` frames up (1: the caller of the function that calls this):
  the module of whoever called a public register_* function."""
  return sys._getframe(depth + 1).f_globals.get("__name__", MAIN_MODULE)  # pylint: disable=protected-access


class Registry:
  """Names -> things of one kind (`what`, e.g. "likelihood kind"), open to plug-ins.

  `builtins` maps the project's own names to their things or to "module:attribute" paths
  (imported when first asked for, so that a registry is importable without TensorFlow).
  """

  def __init__(self, what: str, builtins: Optional[Mapping[str, Any]] = None):
    if what in REGISTRIES:
      raise ValueError(f"a registry of {what}s exists already")
    self.what = what
    self._things: Dict[str, Any] = dict(builtins or {})
    self._modules: Dict[str, str] = {}  # name -> the plug-in module that registered it
    REGISTRIES[what] = self

  def register(self, name: str, thing: Any, module: str, replace: bool = False) -> Any:
    """Adds `thing` under `name`, registered by `module` (a plug-in's, recorded in run.json);
    a name already taken is a ValueError unless `replace` (the same thing again is not)."""
    if not isinstance(name, str) or not name or any(c in name for c in " ,:/\t\n"):
      raise ValueError(f"a {self.what}'s name must be a non-empty word, got {name!r}")
    # The same thing again, or its module run again (a notebook cell, a reload): no clash.
    again = self._things.get(name) is thing or self._modules.get(name) == module
    if name in self._things and not (replace or again):
      owner = self._modules.get(name, "jmvae-tf itself")
      raise ValueError(
        f"{self.what} {name!r} is registered already (by {owner}); choose another name "
        "or pass replace=True"
      )
    self._things[name] = thing
    self._modules[name] = module
    return thing

  def __contains__(self, name) -> bool:
    return name in self._things

  def names(self) -> Tuple[str, ...]:
    return tuple(self._things)

  def get(self, name: str) -> Any:
    """The thing registered as `name`, or a PluginError naming the choices and how a plug-in
    registers one."""
    if name not in self._things:
      raise PluginError(
        f"unknown {self.what} {name!r}; choose from {list(self._things)} (a plug-in's "
        "must be registered first: import the module that registers it, or pass "
        "--plugins=MODULE to a runner)"
      )
    thing = self._things[name]
    if isinstance(thing, str) and ":" in thing:  # a built-in, imported when first asked for
      module, attribute = thing.split(":")
      thing = getattr(importlib.import_module(module), attribute)
      self._things[name] = thing
    return thing

  def plugin_module(self, name: str) -> Optional[str]:
    """The module that registered `name`, or None for the project's own."""
    return self._modules.get(name)


def modules_for(used: Mapping[str, Iterable[str]]) -> Dict[str, List[str]]:
  """{plug-in module: ["<what> <name>", ...]} for the names `used` ({what: names}) that a
  plug-in registered (the project's own and those of unknown registries left out): what a
  run.json records so that reading it imports them again."""
  out: Dict[str, List[str]] = {}
  for what, names in used.items():
    known = REGISTRIES.get(what)
    for name in names:
      module = known.plugin_module(name) if known is not None else None
      if module is not None:
        out.setdefault(module, []).append(f"{what} {name}")
  return {module: sorted(set(out[module])) for module in sorted(out)}


def import_plugins(modules: Iterable[str], source: str = "--plugins", needs=None) -> None:
  """Imports each plug-in module (registering what it registers); one that cannot be imported
  is a PluginError naming it, what it provides (`needs`: {module: ["<what> <name>"]}) and
  `source` (where it was asked for: run.json, --plugins)."""
  needs = needs or {}
  for module in modules:
    if not isinstance(module, str) or not module:
      raise PluginError(f"{source}: a plug-in module must be a module name, got {module!r}")
    provides = f" ({', '.join(needs[module])})" if needs.get(module) else ""
    if module == MAIN_MODULE:
      missing = [
        item
        for item in needs.get(module, ())
        if item.rsplit(" ", 1)[-1] not in REGISTRIES.get(item.rsplit(" ", 1)[0], ())
      ]
      if missing:
        raise PluginError(
          f"{source} needs what a script or notebook registered{provides}: it cannot be "
          "imported again; run that code first, or move it to an importable module"
        )
      continue
    try:
      importlib.import_module(module)
    except Exception as e:  # ImportError, or whatever the plug-in's own code raised
      raise PluginError(
        f"{source} needs the plug-in module {module!r}{provides}, which cannot be imported "
        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); put it on the "
        "Python path"
      ) from None
