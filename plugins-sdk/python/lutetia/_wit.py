"""Access to the generated component bindings (`wit_world`), kept out of plugin code.

Every service module calls the host through :func:`call`, which

- finds the interface's generated module (``wit_world.imports.kv``...). The
  build world only imports the interfaces the manifest asks for, so a missing module
  means the manifest did not ask for the capability: the call raises
  :class:`~lutetia.errors.Denied` naming the manifest entry to add;
- turns the bindings' ``componentize_py_types.Err(types.Error_*)`` into the SDK's
  :class:`~lutetia.errors.ServiceError` subclasses.

Outside a component (plain ``python3``, unit tests) there is no ``wit_world`` at all:
calls raise :class:`~lutetia.errors.NotInHost`.

The generated modules are imported **when this module is imported**, that is at build
time: componentize-py snapshots the interpreter after importing the plugin, and a
component has no file system at run time, so a module first imported during a call
would not be found (``ModuleNotFoundError``).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Dict, Optional

from .errors import Denied, NotInHost, ServiceError

__all__ = ["call", "interface", "err_class", "in_host"]

#: What to add to ``plugin.toml`` to get each capability-bound interface.
CAPABILITY_HINTS: Dict[str, str] = {
    "kv": "add `kv = true` under [capabilities] in plugin.toml",
    "store": "add a [capabilities.store] table to plugin.toml",
    "files": "add a [capabilities.files] table to plugin.toml",
    "mail": "add a [capabilities.mail] table to plugin.toml",
    "events": "list the topic in [capabilities.events] publish in plugin.toml",
}

#: Every interface a build world may import.
INTERFACES = ("types", "log", "config", "kv", "store", "files", "mail", "events")

_modules: Dict[str, Optional[ModuleType]] = {}
_err: Optional[type] = None
_in_host: Optional[bool] = None


def _load() -> bool:
    """Imports ``wit_world`` and every interface module it has; returns whether it exists."""
    global _in_host
    try:
        importlib.import_module("wit_world")
    except ImportError:
        _in_host = False
        return False
    _in_host = True
    for name in INTERFACES:
        try:
            _modules[name] = importlib.import_module(f"wit_world.imports.{name}")
        except ImportError:
            _modules[name] = None
    err_class()
    return True


def in_host() -> bool:
    """Whether the generated bindings exist, i.e. the code runs inside a component."""
    if _in_host is None:
        _load()
    return bool(_in_host)


def interface(name: str) -> ModuleType:
    """The generated module of the imported interface `name` (``kv``, ``store``...).

    Raises :class:`NotInHost` outside a component and :class:`Denied` when the build world
    does not import the interface (the manifest did not ask for its capability).
    """
    if name in _modules:
        module = _modules[name]
        if module is None:
            raise _missing(name)
        return module
    if not in_host():
        raise NotInHost(
            f"lutetia.{name} calls the Lutetia host, which only exists inside a plugin "
            "component (built with `lutetia plugin build`); it cannot run in plain Python"
        )
    try:
        module = importlib.import_module(f"wit_world.imports.{name}")
    except ImportError:
        _modules[name] = None
        raise _missing(name) from None
    _modules[name] = module
    return module


def _missing(name: str) -> Denied:
    hint = CAPABILITY_HINTS.get(name, f"ask for the {name} capability in plugin.toml")
    return Denied(f"this plugin was built without the {name} capability: {hint} and rebuild")


def err_class() -> type:
    """The bindings' ``componentize_py_types.Err`` exception class."""
    global _err
    if _err is None:
        try:
            _err = importlib.import_module("componentize_py_types").Err
        except ImportError:  # outside a component: nothing raises it

            class _NeverRaised(Exception):
                value: Any = None

            _err = _NeverRaised
    return _err


def call(name: str, function: str, *args: Any) -> Any:
    """Calls `function` of the imported interface `name`, converting its errors."""
    module = interface(name)
    err = err_class()
    try:
        return getattr(module, function)(*args)
    except err as e:  # type: ignore[misc]
        raise ServiceError.from_wit(getattr(e, "value", None)) from None


def _reset() -> None:
    """Forgets the cached modules (for unit tests that swap fake bindings in)."""
    global _err, _in_host
    _modules.clear()
    _err = None
    _in_host = None


_load()
