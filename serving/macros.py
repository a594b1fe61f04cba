"""Renders the dbt project's own macros with jinja2, outside dbt.

The Python side never carries a second copy of a time rule: the point-in-time join
and the feature-view spec reader that `dbt build` uses are loaded from `macros/` and
rendered here with the same dispatch order dbt uses (`<adapter>__name`, then
`default__name`). Only the handful of dbt context members those macros touch exist
here: `adapter.dispatch`, `adapter.quote`, `return`, `exceptions`, `modules`.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import jinja2
from jinja2 import nodes

from serving.errors import FeatureStoreError

PACKAGE = "feature_store"
_TEST_BLOCK = re.compile(r"{%-?\s*test\s")


def quote(identifier: str) -> str:
    """An identifier quoted as dbt-duckdb's adapter.quote does."""
    return '"' + identifier.replace('"', '""') + '"'


class _Return(Exception):
    """dbt's `{{ return(x) }}` ends a macro early with a value; so does this."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _return(value: Any) -> None:
    raise _Return(value)


def _raise_compiler_error(message: str) -> None:
    raise FeatureStoreError(message)


class _Adapter:
    def __init__(self, macros: MacroSet) -> None:
        self._macros = macros

    def dispatch(self, name: str, macro_namespace: str | None = None) -> Callable[..., Any]:
        for candidate in (f"{self._macros.adapter}__{name}", f"default__{name}"):
            if candidate in self._macros.names:
                return self._macros.get(candidate)
        raise FeatureStoreError(f"no implementation of macro '{name}' for adapter '{self._macros.adapter}'")

    @staticmethod
    def quote(identifier: str) -> str:
        return quote(identifier)


def _macro_files(macro_dir: Path) -> list[Path]:
    """The macros of the packages `dbt deps` installed beside the project, then the project's
    own (a later macro replaces an earlier one of the same name, so the project's win, as in
    dbt): a project that uses feature_store as a dbt package finds its macros there."""
    folders = [*sorted((macro_dir.parent / "dbt_packages").glob("*/macros")), macro_dir]
    # A local package is a symlink; rglob does not descend into one, so start at its target.
    return [path for folder in folders for path in sorted(folder.resolve().rglob("*.sql"))]


class MacroSet:
    """All macros under a folder, callable by name: `MacroSet(dir).call('name', ...)`."""

    def __init__(self, macro_dir: Path, adapter: str = "duckdb") -> None:
        self.adapter = adapter
        self._functions: dict[str, Callable[..., Any]] = {}
        env = jinja2.Environment(
            extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
            undefined=jinja2.Undefined,
            autoescape=False,
        )
        sources = {path: path.read_text() for path in _macro_files(Path(macro_dir))}
        # dbt's {% test %} blocks are for dbt alone; nothing here renders a data test.
        sources = {path: text for path, text in sources.items() if not _TEST_BLOCK.search(text)}
        self.names = {
            macro.name for source in sources.values() for macro in env.parse(source).find_all(nodes.Macro)
        }
        # Globals are copied when a template module is built, so every name must be
        # present first; each resolves to its macro only when called.
        env.globals.update(
            {name: self._late_bound(name) for name in self.names}
            | {
                "return": _return,
                "adapter": _Adapter(self),
                "exceptions": SimpleNamespace(raise_compiler_error=_raise_compiler_error),
                "modules": SimpleNamespace(re=re, datetime=datetime),
                "execute": True,
                PACKAGE: SimpleNamespace(**{name: self._late_bound(name) for name in self.names}),
            }
        )
        for source in sources.values():
            module = env.from_string(source).module
            for name in self.names:
                macro = getattr(module, name, None)
                if isinstance(macro, jinja2.runtime.Macro):
                    self._functions[name] = self._unwrap_return(macro)

    @staticmethod
    def _unwrap_return(macro: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return str(macro(*args, **kwargs))
            except _Return as early:
                return early.value

        return call

    def _late_bound(self, name: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: self._functions[name](*args, **kwargs)

    def get(self, name: str) -> Callable[..., Any]:
        return self._functions[name]

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._functions[name](*args, **kwargs)
