"""The dbt project as dbt itself loads it for one target: profile, adapter and manifest.

The one place that reads profiles.yml (through dbt's own profile loading, so env_var(),
`target:` defaults and every adapter's credential rules behave exactly as in `dbt build`)
and the one place that imports dbt's internals. Importing dbt costs seconds, so nothing
here runs until a caller needs the profile or a cache miss needs dbt to render.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from argparse import Namespace
from pathlib import Path
from typing import Any

from serving.errors import FeatureStoreError

MANIFEST = Path("target") / "manifest.json"
_ENV_VAR = re.compile(r"""env_var\(\s*['"]([^'"]+)['"]""")


class TargetError(FeatureStoreError):
    """The dbt profile or target cannot be loaded."""


def profiles_dir(project_dir: Path) -> Path:
    """Where dbt looks for profiles.yml: $DBT_PROFILES_DIR, else the project, else ~/.dbt."""
    configured = os.environ.get("DBT_PROFILES_DIR")
    if configured:
        return Path(configured).resolve()
    return project_dir if (project_dir / "profiles.yml").exists() else Path.home() / ".dbt"


def settings_fingerprint(project_dir: Path, target: str | None) -> str:
    """A hash of everything outside the manifest that can change rendered SQL: the project
    and profile files, the selected target, and the environment variables they read.
    Computed without importing dbt, so a cached render costs no dbt start-up."""
    digest = hashlib.sha256(repr(target).encode())
    texts = []
    for path in (project_dir / "dbt_project.yml", profiles_dir(project_dir) / "profiles.yml"):
        text = path.read_text() if path.exists() else ""
        texts.append(text)
        digest.update(text.encode())
    for name in sorted({name for text in texts for name in _ENV_VAR.findall(text)} | {"DBT_PROFILES_DIR"}):
        digest.update(f"{name}={os.environ.get(name)}".encode())
    return digest.hexdigest()


class Target:
    """The selected output of the project's profile, loaded by dbt."""

    def __init__(self, config: Any, project_dir: Path) -> None:
        self.config = config
        self.project_dir = project_dir
        self.name: str = config.target_name
        self.type: str = config.credentials.type
        self.credentials = config.credentials

    @functools.cached_property
    def adapter(self) -> Any:
        """dbt's adapter for this target (quoting, Relation, dispatch order), never connected.
        Its own instance rather than dbt's per-type singleton, so two targets of one type
        in one process keep their own settings."""
        from dbt.adapters.factory import FACTORY
        from dbt.mp_context import get_mp_context

        return FACTORY.get_adapter_class_by_name(self.type)(self.config, get_mp_context())


_LOADED: dict[tuple[Path, str | None, str], Target] = {}


def load_target(project_dir: Path, target: str | None = None) -> Target:
    """The profile target the way dbt selects it: `target`, else the profile's default.
    Loaded again when the profile, the project or an environment variable they read changes."""
    key = (project_dir, target, settings_fingerprint(project_dir, target))
    if key not in _LOADED:
        _LOADED[key] = _load(project_dir, target)
    return _LOADED[key]


def _quiet_dbt() -> None:
    # dbt logs adapter registration and parse events to stdout by default; Python
    # callers and the CLI's JSON output must not see them.
    from dbt_common.events.event_manager_client import cleanup_event_logger

    cleanup_event_logger()


def _load(project_dir: Path, target: str | None) -> Target:
    from dbt.config.runtime import RuntimeConfig
    from dbt.exceptions import DbtProfileError, DbtProjectError
    from dbt.flags import get_flags, set_from_args
    from dbt_common.context import set_invocation_context
    from dbt_common.exceptions import DbtBaseException

    _quiet_dbt()
    set_invocation_context(os.environ)
    args = Namespace(
        project_dir=str(project_dir),
        profiles_dir=str(profiles_dir(project_dir)),
        target=target,
        profile=None,
        threads=None,
        vars={},
    )
    set_from_args(args, None)
    try:
        config = RuntimeConfig.from_args(get_flags())
    except (DbtProfileError, DbtProjectError) as error:
        raise TargetError(f"cannot load the dbt profile for target {target or '(default)'}: {_one_line(error)}") from error
    except DbtBaseException as error:
        raise TargetError(f"cannot load the dbt project {project_dir}: {_one_line(error)}") from error
    return Target(config, project_dir)


def manifest_path(project_dir: Path) -> Path:
    return project_dir / MANIFEST


def read_manifest_json(project_dir: Path) -> tuple[dict[str, Any], str]:
    """target/manifest.json as a dict, with the hash of its bytes."""
    path = manifest_path(project_dir)
    try:
        data = path.read_bytes()
        return json.loads(data), hashlib.sha256(data).hexdigest()
    except (OSError, ValueError) as error:
        raise TargetError(f"cannot read {path}: {error}; run `dbt parse` to write it again") from error


_MANIFESTS: dict[tuple[Path, str], Any] = {}


def manifest_object(project_dir: Path, manifest_hash: str) -> Any:
    """dbt's Manifest (macros resolvable by package) from target/manifest.json."""
    key = (project_dir, manifest_hash)
    if key not in _MANIFESTS:
        from dbt.contracts.graph.manifest import Manifest, WritableManifest

        writable = WritableManifest.read_and_check_versions(str(manifest_path(project_dir)))
        _MANIFESTS.clear()
        _MANIFESTS[key] = Manifest.from_writable_manifest(writable)
    return _MANIFESTS[key]


def _one_line(error: BaseException) -> str:
    return " ".join(str(getattr(error, "msg", None) or error).split())


def cache_path(project_dir: Path, kind: str, target: str | None) -> Path:
    """Where a fact about the selected target is remembered, keyed by the settings fingerprint."""
    return project_dir / "target" / "feature_store_render" / f"{kind}-{settings_fingerprint(project_dir, target)[:32]}.json"


def recall(path: Path) -> Any:
    """A remembered JSON value, or None when absent or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def remember(path: Path, value: Any) -> None:
    """Writes JSON atomically (a reader never sees half a file); a read-only project only
    loses the cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(value))
        partial.replace(path)
    except OSError:
        pass


def target_type(project_dir: Path, target: str | None = None) -> str:
    """The selected target's adapter type, remembered (names and types only, never
    credentials) so that a process which finds it does not start dbt to learn it."""
    path = cache_path(project_dir, "target", target)
    saved = recall(path)
    if isinstance(saved, dict) and isinstance(saved.get("type"), str):
        return saved["type"]
    loaded = load_target(project_dir, target)
    remember(path, {"name": loaded.name, "type": loaded.type})
    return loaded.type
