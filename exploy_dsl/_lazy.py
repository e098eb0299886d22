"""Public names loaded on first use (PEP 562), for exploy_dsl, exploy_dsl.testing and compiler.

A package keeps a table of public name -> defining module; importing the package loads none of
them, so `from exploy_dsl import Runtime` or `exploy-dsl --help` pay only for what they use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_exports(
    package: str,
    table: Mapping[str, str],
    namespace: MutableMapping[str, Any],
    *,
    modules: frozenset[str] = frozenset(),
    rename: bool = True,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose globals are ``namespace``.

    ``modules`` are names that stand for the module itself (``exploy_dsl.op``). With
    ``rename``, a class defined inside the package shows its public module name in tracebacks
    and reprs. A loaded name is cached in ``namespace``.
    """

    def __getattr__(name: str) -> Any:
        module_name = table.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(module_name)
        value = module if name in modules else getattr(module, name)
        if rename and isinstance(value, type) and value.__module__.startswith(f"{package}."):
            value.__module__ = package
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(namespace.get("__all__", table))

    return __getattr__, __dir__
