"""SQL and values from the project's macros, rendered by dbt itself for the current target.

dbt builds the macro context (the adapter's quoting and Relation, the dispatch chain with
the project's `dispatch:` config and parent adapters, macros from dbt, the adapter and
installed packages) exactly as `dbt run-operation` does, from target/manifest.json. No
second renderer exists to drift from it.

dbt's start-up costs seconds, so every result is cached by the manifest's hash, the
project/profile settings (see dbt_target.settings_fingerprint) and the call's arguments:
in memory, and as JSON files under target/feature_store_render/ for the next process. A
repeated call neither imports dbt nor renders. Values that vary per call (an as_of time,
a temporary table's name) are passed as placeholders and substituted after rendering.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from serving.dbt_target import Target, load_target, manifest_object, recall, remember, settings_fingerprint
from serving.errors import FeatureStoreError

PACKAGE = "feature_store"
CACHE_DIR = Path("target") / "feature_store_render"
_KEEP_CACHES = 8


class RenderError(FeatureStoreError):
    """dbt could not render a macro: an error raised by the macro, an undefined name, bad SQL."""


class Renderer:
    """Calls the project's macros through dbt: `Renderer(dir, hash).call('name', *args)`.

    `portable=True` resolves every dispatch to its `default__` implementation (tests run
    the portable SQL on DuckDB that way); it is never used to serve."""

    def __init__(
        self, project_dir: Path, manifest_hash: str, target: str | None = None, portable: bool = False, cache: bool = True
    ) -> None:
        self.project_dir = project_dir
        self.target_name = target
        self.portable = portable
        self._manifest_hash = manifest_hash
        self._cache_on_disk = cache
        scope = hashlib.sha256(f"{manifest_hash}|{settings_fingerprint(project_dir, target)}|{portable}".encode())
        self._dir = project_dir / CACHE_DIR / scope.hexdigest()[:32]
        self._memory: dict[str, Any] = {}
        self.renders = 0  # cache misses: calls dbt actually rendered (tests and benches read it)

    @property
    def target(self) -> Target:
        return load_target(self.project_dir, self.target_name)

    def call(self, macro: str, *args: Any, **kwargs: Any) -> Any:
        """The macro's return value (or rendered text), rendered once per distinct call."""
        key = _key(["macro", macro, args, kwargs])
        return self._cached(key, lambda: self._render(macro, args, kwargs))

    def relation(self, database: str | None, schema: str, identifier: str) -> str:
        """A relation as the target's adapter quotes it; `database` None means the target's."""
        key = _key(["relation", database, schema, identifier])
        return self._cached(key, lambda: self._relation(database, schema, identifier))

    def _cached(self, key: str, render: Any) -> Any:
        if key in self._memory:
            return self._memory[key]
        path = self._dir / f"{key}.json"
        # JSON null is never a render's result, so None means "not cached".
        value = recall(path) if self._cache_on_disk else None
        if value is None:
            value = render()
            self.renders += 1
            if self._cache_on_disk:
                self._store(path, value)
        self._memory[key] = value
        return value

    def _store(self, path: Path, value: Any) -> None:
        first = not self._dir.exists()
        remember(path, value)
        if first:
            _prune(self._dir.parent)

    def _render(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        from dbt.clients.jinja import MacroGenerator
        from dbt_common.exceptions import DbtBaseException
        from jinja2 import TemplateError

        target = self.target
        manifest = manifest_object(self.project_dir, self._manifest_hash)
        macro = manifest.find_macro_by_name(name, target.config.project_name, PACKAGE)
        if macro is None:
            raise RenderError(f"no macro named '{name}' in package '{PACKAGE}'; is target/manifest.json from this project?")
        try:
            context = self._context(target, macro, manifest)
            result = MacroGenerator(macro, context)(*_plain(args), **_plain(kwargs))
        except (DbtBaseException, TemplateError, TypeError, AttributeError, KeyError) as error:
            # The macro's own message first: raise_compiler_error texts name the model and field.
            where = f"(dbt rendering macro {PACKAGE}.{name} for target '{target.name}', a {target.type} target)"
            raise RenderError(f"{_message(error)} {where}") from error
        return _plain_result(result)

    def _context(self, target: Target, macro: Any, manifest: Any) -> dict[str, Any]:
        from dbt.adapters.factory import FACTORY
        from dbt.context.providers import MacroContext, OperationProvider, RuntimeDatabaseWrapper

        class PortableWrapper(RuntimeDatabaseWrapper):
            def _get_adapter_macro_prefixes(self) -> list[str]:
                return ["default"]

        class PortableProvider(OperationProvider):
            DatabaseWrapper = PortableWrapper

        provider = PortableProvider() if self.portable else OperationProvider()
        # dbt's context looks its adapter up in a per-type registry; ours is lent to it
        # while the context is built, so two projects or targets of one type in one
        # process each render with their own project's dispatch and quoting settings.
        previous = FACTORY.adapters.get(target.type)
        FACTORY.adapters[target.type] = target.adapter
        try:
            return MacroContext(macro, target.config, manifest, provider, PACKAGE).to_dict()
        finally:
            if previous is None:
                FACTORY.adapters.pop(target.type, None)
            else:
                FACTORY.adapters[target.type] = previous

    def _relation(self, database: str | None, schema: str, identifier: str) -> str:
        target = self.target
        adapter = target.adapter
        relation = adapter.Relation.create(
            database=database or target.credentials.database,
            schema=schema,
            identifier=identifier,
            quote_policy={**adapter.Relation.get_default_quote_policy().to_dict(omit_none=True), **target.config.quoting},
        )
        return str(relation)


def _key(call: list[Any]) -> str:
    return hashlib.sha256(json.dumps(call, sort_keys=True, default=str).encode()).hexdigest()[:40]


def _plain(value: Any) -> Any:
    """JSON-shaped arguments, so a cached call and a rendered one see the same values."""
    return json.loads(json.dumps(value, default=str))


def _plain_result(value: Any) -> Any:
    if isinstance(value, str):
        return str(value)  # dbt's rendered strings are str subclasses that JSON keeps as str
    return value


def _message(error: BaseException) -> str:
    return " ".join(str(getattr(error, "msg", None) or error).split())


def _prune(cache_root: Path) -> None:
    """Keeps the newest few caches: each manifest (every dbt run) starts a new one."""
    if not cache_root.is_dir():
        return
    caches = sorted((p for p in cache_root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in caches[_KEEP_CACHES:]:
        shutil.rmtree(stale, ignore_errors=True)
