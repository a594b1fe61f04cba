"""The registry: feature views read from dbt's manifest (target/manifest.json).

There is no second place where features are declared. Each model with
`config.meta.feature_store` becomes a FeatureView through the project's own
`feature_view_spec` macro, rendered by dbt (serving.rendering), so Python and `dbt build`
accept and reject the same YAML. Relations are named in the database of the selected
target, not the one baked into the manifest, so a copied warehouse opens where it is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from serving.dbt_target import TargetError, profiles_dir, read_manifest_json, target_type
from serving.errors import ColumnClashError, EntityKeyError, InputError, RegistryError, UnknownFeatureError
from serving.rendering import Renderer

PROJECT_FILES = ("dbt_project.yml", "profiles.yml")
# The key types of macros/graph/online_key_types.sql, which refuses the others at validation
# (tests/macros/test_feature_view_spec_macro.py pins the two lists together).
_INT_TYPES = {"tinyint", "smallint", "integer", "int", "bigint", "int1", "int2", "int4", "int8", "int32", "int64",
              "long", "utinyint", "usmallint", "uinteger"}
_STR_TYPES = {"varchar", "text", "string", "char", "bpchar", "character", "character varying"}


def python_type(data_type: str | None) -> type | None:
    """The Python type an entity key of this declared SQL type takes (None: not checked)."""
    base = (data_type or "").lower().split("(")[0].strip()
    if base in _INT_TYPES:
        return int
    if base in _STR_TYPES:
        return str
    return None
PROJECT_FOLDERS = ("models", "macros")


@dataclass(frozen=True)
class Feature:
    name: str
    data_type: str | None
    description: str


@dataclass(frozen=True)
class FeatureView:
    name: str
    relation: str
    entity: tuple[str, ...]
    timestamp_column: str
    created_timestamp_column: str | None
    ttl: str | None
    ttl_seconds: int | None
    online: bool
    owner: str | None
    tags: tuple[str, ...]
    description: str
    features: tuple[Feature, ...]
    entity_types: dict[str, str | None] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # A versioned dbt model gives one view per version, named "<model>.v<version>" (online keys
    # too); `latest` marks dbt's latest_version, which a reference without a version means.
    model: str = ""
    version: str | None = None
    latest: bool = True
    # The dbt sources upstream of the model ("source.table"), for freshness.
    sources: tuple[str, ...] = ()
    lifecycle: str | None = None
    # The view name a request wrote ("product_popularity" for product_popularity.v2), which
    # full feature names follow; None: the view's own name.
    reference_name: str | None = field(default=None, compare=False)

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def output_prefix(self) -> str:
        """The `<prefix>__feature` of full feature names: the view as the request named it."""
        return (self.reference_name or self.name).replace(".", "_")

    def feature(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise UnknownFeatureError(
            f"feature '{name}' is not in feature view '{self.name}'; its features: {', '.join(self.feature_names)}"
        )

    def spec_for(self, feature_names: Iterable[str]) -> dict[str, Any]:
        """The macro spec narrowed to some features, in the order given."""
        wanted = [self.feature(name) for name in feature_names]
        features = [{"name": f.name, "data_type": f.data_type, "description": f.description} for f in wanted]
        return {**self.spec, "name": self.reference_name or self.name, "features": features}


@dataclass(frozen=True)
class DeclaredFreshness:
    """A source's `freshness:` as declared in the project (from the manifest, by the registry)."""

    source: str  # "source_name.table"
    unique_id: str
    loaded_at_field: str | None
    warn_after: str | None  # "1 day"
    error_after: str | None


@dataclass(frozen=True)
class FeatureService:
    """The features one ML model reads: a dbt exposure of type ml with meta.feature_store
    (macros/graph/feature_service_spec.sql). Versions are pinned in its references."""

    name: str
    description: str
    owner: str | None
    features: tuple[str, ...]
    views: tuple[str, ...]


def _newest_source_mtime(project_dir: Path) -> float:
    paths = [project_dir / name for name in PROJECT_FILES]
    for folder in PROJECT_FOLDERS:
        paths.extend(p for p in (project_dir / folder).rglob("*") if p.suffix in (".sql", ".yml", ".yaml"))
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def parse_project(project_dir: Path, target: str | None = None) -> None:
    """Runs `dbt parse`, which writes target/manifest.json without touching the warehouse.
    dbt's console log is off: its error is this error's message, shown once."""
    from dbt.cli.main import dbtRunner

    if not (project_dir / "dbt_project.yml").is_file():
        raise RegistryError(
            f"{project_dir} is not a dbt project (it has no dbt_project.yml); "
            "run featurestore in your project's folder, or pass project_dir=..."
        )
    args = ["parse", "--log-level", "none", "--log-level-file", "debug", "--project-dir", str(project_dir),
            "--profiles-dir", str(profiles_dir(project_dir))]
    result = dbtRunner().invoke([*args, *(["--target", target] if target else [])])
    if not result.success:
        why = " ".join(str(result.exception).split()) if result.exception else f"see {project_dir / 'logs' / 'dbt.log'}"
        raise RegistryError(f"dbt parse failed in {project_dir}: {why}")


def load_manifest(project_dir: Path, target: str | None = None) -> tuple[dict[str, Any], str]:
    """target/manifest.json (and its hash), parsed again when the project changed since, or
    when it was written for another adapter than the selected target's."""
    manifest_path = project_dir / "target" / "manifest.json"
    if not manifest_path.exists() or manifest_path.stat().st_mtime < _newest_source_mtime(project_dir):
        parse_project(project_dir, target)
    try:
        manifest, digest = read_manifest_json(project_dir)
    except TargetError as error:
        raise RegistryError(str(error)) from error
    _check_manifest_shape(manifest, manifest_path)
    if manifest["metadata"].get("adapter_type") != target_type(project_dir, target):
        parse_project(project_dir, target)
        manifest, digest = read_manifest_json(project_dir)
        _check_manifest_shape(manifest, manifest_path)
    return manifest, digest


def _check_manifest_shape(manifest: Any, path: Path) -> None:
    """The parts of a manifest the registry reads, so that a stray JSON file is named as such."""
    problem = ""
    if not isinstance(manifest, dict):
        problem = f"it holds a JSON {type(manifest).__name__}, not an object"
    elif not isinstance(manifest.get("metadata"), dict) or not isinstance(manifest.get("nodes"), dict):
        problem = "it lacks the 'metadata' and 'nodes' objects"
    else:
        bad = next((name for name, node in manifest["nodes"].items() if not isinstance(node, dict) or "name" not in node), None)
        if bad is not None:
            problem = f"its node {bad!r} is not a dbt node"
        else:
            models = (node for node in manifest["nodes"].values() if node.get("resource_type") == "model")
            bad = next((node["name"] for node in models if not isinstance(node.get("schema"), str)), None)
            problem = f"its model {bad!r} has no schema" if bad is not None else ""
    if problem:
        raise RegistryError(f"{path} is not a dbt manifest: {problem}; delete it and run `dbt parse` to write it again")


@dataclass(frozen=True)
class RequestField:
    """A value the caller sends with each entity row for on-demand views (e.g. amount)."""

    name: str
    data_type: str


@dataclass(frozen=True)
class OnDemandView:
    """Features computed per request by SQL expressions over source features and request
    fields (macros/on_demand/on_demand_view_spec.sql). `sql` is on_demand_select rendered
    for DuckDB in process (each input a list parameter, in the spec's input order) and
    `json_sql` the same text reading each input from a JSON array instead (None when an
    input has a type JSON does not carry as is); `settings` make DuckDB compute as the
    target's warehouse does."""

    name: str
    description: str
    sources: tuple[tuple[str, tuple[str, ...]], ...]
    request_fields: tuple[RequestField, ...]
    features: tuple[Feature, ...]
    sql: str
    json_sql: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # The model's manifest node, whose definition a saved dataset's lineage records.
    unique_id: str | None = None

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def source_references(self) -> list[str]:
        """The source features it reads, as view:feature references."""
        return [f"{source}:{feature}" for source, features in self.sources for feature in features]

    @property
    def output_prefix(self) -> str:
        """The `<prefix>__feature` of full feature names."""
        return self.name

    def feature(self, name: str) -> Feature:
        found = {feature.name: feature for feature in self.features}.get(name)
        if found is None:
            raise UnknownFeatureError(f"feature '{name}' is not in on-demand view '{self.name}'; its features: {', '.join(self.feature_names)}")
        return found


class Registry:
    """Feature views by name, from one manifest, with the on-demand views over them and the
    feature services (ML exposures) that use them."""

    def __init__(
        self,
        views: dict[str, FeatureView],
        on_demand_views: dict[str, OnDemandView] | None = None,
        services: dict[str, FeatureService] | None = None,
        source_freshness: dict[str, DeclaredFreshness] | None = None,
    ) -> None:
        self.views = views
        self.on_demand_views = on_demand_views or {}
        self.services = services or {}
        # Sources that declare dbt `freshness:`, by "source.table".
        self.source_freshness = source_freshness or {}
        # A versioned model's name alone means its latest version.
        self.latest = {view.model: view.name for view in views.values() if view.version is not None and view.latest}

    @classmethod
    def from_project(cls, project_dir: str | os.PathLike[str], target: str | None = None) -> Registry:
        project_dir = Path(project_dir).resolve()
        manifest, digest = load_manifest(project_dir, target)
        return cls.from_manifest(manifest, Renderer(project_dir, digest, target))

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], renderer: Renderer) -> Registry:
        views = {}
        for node in manifest.get("nodes", {}).values():
            meta = (node.get("config") or {}).get("meta") or {}
            if node.get("resource_type") != "model" or "feature_store" not in meta:
                continue
            spec = renderer.call("feature_view_spec", node)
            # The node's database is the one dbt wrote to; unless the model names its own,
            # read it from the database the selected target opens.
            spec["relation"] = renderer.relation(
                (node.get("config") or {}).get("database"), node["schema"], node.get("alias") or node["name"]
            )
            views[spec["name"]] = _view_from_spec(spec, node, _upstream_sources(manifest, node))
        services = {}
        specs = [view.spec for view in views.values()]
        for exposure in (manifest.get("exposures") or {}).values():
            if _is_feature_service(exposure):
                service = renderer.call("feature_service_spec", exposure, specs)
                services[service["name"]] = FeatureService(
                    service["name"], service["description"], service["owner"], tuple(service["features"]), tuple(service["views"])
                )
        return cls(
            dict(sorted(views.items())),
            on_demand_views=_on_demand_views(manifest, renderer, views),
            services=dict(sorted(services.items())),
            source_freshness=_declared_freshness(manifest),
        )

    def resolve_any(self, references: Iterable[str] | str) -> list[tuple[FeatureView | OnDemandView, list[str]]]:
        """As resolve, for references to feature views and on-demand views alike."""
        if not self.on_demand_views:
            return list(self.resolve(references))
        if isinstance(references, str):
            references = [references]
        resolved: dict[str, list[str]] = {}
        for reference in references:
            view_name, sep, feature_name = str(reference).partition(":")
            view = self.on_demand_views.get(view_name)
            if view is None:
                try:
                    [(view, names)] = self.resolve([reference])
                except UnknownFeatureError as error:
                    if not str(error).startswith(f"feature view '{view_name}' does not exist"):
                        raise
                    raise UnknownFeatureError(f"{error}; on-demand views: {', '.join(self.on_demand_views)}") from None
            else:
                names = view.feature_names if feature_name == "*" else [view.feature(feature_name).name]
            chosen = resolved.setdefault(view_name, [])
            chosen.extend(name for name in names if name not in chosen)
        if not resolved:
            raise UnknownFeatureError("no features requested; ask for at least one view:feature")
        result: list[tuple[FeatureView | OnDemandView, list[str]]] = []
        for name, chosen in resolved.items():
            on_demand = self.on_demand_views.get(name)
            if on_demand is None:
                result += self.resolve([f"{name}:{feature}" for feature in chosen])  # versions, and the name as written
            else:
                result.append((on_demand, [feature for feature in on_demand.feature_names if feature in chosen]))
        return result

    def source_views(self, references: Iterable[str] | str) -> list[tuple[FeatureView, list[str]]]:
        """The feature views a request reads: those referenced, and those the referenced
        on-demand views read (their entity keys are the request's)."""
        reads: list[str] = []
        for view, names in self.resolve_any(references):
            if isinstance(view, OnDemandView):
                reads += view.source_references
            else:
                reads += [f"{view.name}:{feature}" for feature in names]
        return self.resolve(reads)

    def view(self, name: str) -> FeatureView:
        if name in self.views:
            return self.views[name]
        if name in self.latest:
            return self.views[self.latest[name]]
        model = name.rpartition(".v")[0]
        if model and any(view.model == model for view in self.views.values()):
            versions = [view.name for view in self.views.values() if view.model == model and view.version is not None]
            if not versions:
                raise UnknownFeatureError(f"feature view '{model}' has no versions (its model declares none); name it '{model}'")
            raise UnknownFeatureError(f"feature view '{model}' has no version '{name[len(model) + 1:]}'; its versions: {', '.join(versions)}")
        raise UnknownFeatureError(
            f"feature view '{name}' does not exist; feature views: {', '.join(self.views) or '(none)'}"
        )

    def service(self, name: str) -> FeatureService:
        try:
            return self.services[name]
        except KeyError:
            raise UnknownFeatureError(
                f"feature service '{name}' does not exist; feature services (ML exposures with meta.feature_store): "
                f"{', '.join(self.services) or '(none)'}"
            ) from None

    def references(
        self, features: Iterable[str] | str | FeatureService | None, feature_service: str | FeatureService | None = None
    ) -> list[str]:
        """The feature references a request means: its features, or its feature service's
        (by name or the object, as in Feast), never both."""
        if isinstance(features, FeatureService) and feature_service is None:
            features, feature_service = None, features
        if feature_service is not None and features is not None:
            raise InputError("pass either features or feature_service=..., not both")
        if feature_service is None:
            if features is None:
                raise InputError("no features requested; pass features (view:feature, ...) or feature_service=...")
            return [features] if isinstance(features, str) else list(features)
        service = feature_service if isinstance(feature_service, FeatureService) else self.service(str(feature_service))
        return list(service.features)

    @staticmethod
    def key_types(views: Iterable[FeatureView]) -> dict[str, type | None]:
        """The Python type of each entity key column the views join on. Views whose key
        columns share a name must share its type too: one request cannot send 1 to one
        view and "1" to another, online or offline."""
        types: dict[str, type | None] = {}
        owners: dict[str, FeatureView] = {}
        for view in views:
            for key in view.entity:
                wanted = python_type(view.entity_types.get(key))
                if key in types and types[key] is not wanted:
                    other = owners[key]
                    raise EntityKeyError(
                        f"entity key {key} is {other.entity_types.get(key) or 'untyped'} in feature view '{other.name}' "
                        f"but {view.entity_types.get(key) or 'untyped'} in '{view.name}'; request them separately, "
                        "or give the key one type in both models"
                    )
                types[key], owners[key] = wanted, view
        return types

    def resolve(self, references: Iterable[str] | str) -> list[tuple[FeatureView, list[str]]]:
        """Feature references ("view:feature", or "view:*") → views with their features.

        The selection rule of macros/macros.yml (select_features), which the SQL follows
        too: views in the order of their first reference, each view's features in the
        view's column order, each once. One string is one reference, not its letters."""
        if isinstance(references, str):
            references = [references]
        resolved: dict[str, list[str]] = {}
        written: dict[str, str] = {}
        for reference in references:
            view_name, sep, feature_name = str(reference).partition(":")
            if not sep or not view_name or not feature_name:
                raise UnknownFeatureError(
                    f"feature reference '{reference}' is not of the form view:feature; feature views: {', '.join(self.views)}"
                )
            view = self.view(view_name)
            names = view.feature_names if feature_name == "*" else [view.feature(feature_name).name]
            chosen = resolved.setdefault(view.name, [])
            written.setdefault(view.name, view_name)
            chosen.extend(name for name in names if name not in chosen)
        if not resolved:
            raise UnknownFeatureError("no features requested; ask for at least one view:feature")
        return [
            (
                self.views[name] if written[name] == name else replace(self.views[name], reference_name=written[name]),
                [feature for feature in self.views[name].feature_names if feature in chosen],
            )
            for name, chosen in resolved.items()
        ]

    @staticmethod
    def output_names(resolved: list[tuple[FeatureView, list[str]]], full_feature_names: bool) -> list[list[str]]:
        """Each resolved view's output column names (`feature`, or `view__feature`), online and
        offline alike. Two views' features may not share a column: one would replace the other."""
        outputs = [[f"{view.output_prefix}__{name}" if full_feature_names else name for name in names] for view, names in resolved]
        flat = [name for names in outputs for name in names]
        duplicated = sorted({name for name in flat if flat.count(name) > 1})
        if duplicated:
            raise ColumnClashError(
                f"feature name(s) {', '.join(duplicated)} come from more than one feature view; "
                "ask for full_feature_names=True (columns named view__feature)"
            )
        return outputs


def _is_feature_service(exposure: dict[str, Any]) -> bool:
    """An exposure declaring meta.feature_store (under config.meta or meta), as the
    is_feature_service macro decides for `dbt build`."""
    config_meta = (exposure.get("config") or {}).get("meta") or {}
    return "feature_store" in config_meta or "feature_store" in (exposure.get("meta") or {})


def _declared_freshness(manifest: dict[str, Any]) -> dict[str, DeclaredFreshness]:
    """Sources with a dbt `freshness:` criterion (warn_after or error_after)."""

    def criterion(rule: Any) -> str | None:
        if not isinstance(rule, dict) or not rule.get("count") or not rule.get("period"):
            return None
        return f"{rule['count']} {rule['period']}{'s' if rule['count'] != 1 else ''}"

    declared = {}
    for unique_id, source in (manifest.get("sources") or {}).items():
        freshness = source.get("freshness") or (source.get("config") or {}).get("freshness") or {}
        warn, error = criterion(freshness.get("warn_after")), criterion(freshness.get("error_after"))
        if warn or error:
            name = f"{source['source_name']}.{source['name']}"
            declared[name] = DeclaredFreshness(name, unique_id, source.get("loaded_at_field"), warn, error)
    return dict(sorted(declared.items()))


def _upstream_sources(manifest: dict[str, Any], node: dict[str, Any]) -> tuple[str, ...]:
    """The dbt sources a model reads, directly or through other models ("source.table")."""
    nodes, sources = manifest.get("nodes", {}), manifest.get("sources") or {}
    found: set[str] = set()
    seen: set[str] = set()
    pending = list((node.get("depends_on") or {}).get("nodes") or [])
    while pending:
        unique_id = pending.pop()
        if unique_id in seen:
            continue
        seen.add(unique_id)
        if unique_id in sources:
            found.add(f"{sources[unique_id]['source_name']}.{sources[unique_id]['name']}")
        elif unique_id in nodes:
            pending.extend((nodes[unique_id].get("depends_on") or {}).get("nodes") or [])
    return tuple(sorted(found))


def _view_from_spec(spec: dict[str, Any], node: dict[str, Any], sources: tuple[str, ...] = ()) -> FeatureView:
    columns = node.get("columns") or {}
    ttl = spec.get("ttl")
    return FeatureView(
        name=spec["name"],
        relation=spec["relation"],
        entity=tuple(spec["entity"]),
        timestamp_column=spec["timestamp_column"],
        created_timestamp_column=spec.get("created_timestamp_column"),
        ttl=ttl["text"] if ttl else None,
        ttl_seconds=ttl["seconds"] if ttl else None,
        online=bool(spec.get("online")),
        owner=spec.get("owner"),
        tags=tuple(spec.get("tags") or ()),
        description=spec.get("description") or "",
        features=tuple(Feature(f["name"], f.get("data_type"), f.get("description") or "") for f in spec["features"]),
        entity_types={key: (columns.get(key) or {}).get("data_type") for key in spec["entity"]},
        spec=spec,
        model=spec.get("model") or spec["name"],
        version=None if spec.get("version") is None else str(spec["version"]),
        latest=bool(spec.get("latest", True)),
        sources=sources,
        lifecycle=spec.get("lifecycle"),
    )


def _on_demand_views(manifest: dict[str, Any], renderer: Renderer, views: dict[str, FeatureView]) -> dict[str, OnDemandView]:
    """Models with `config.meta.on_demand_feature_view`, through on_demand_view_spec."""
    nodes = [
        node for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "model" and "on_demand_feature_view" in ((node.get("config") or {}).get("meta") or {})
    ]
    if not nodes:
        return {}
    specs = {name: view.spec for name, view in views.items()}
    # A versioned view's latest version also under its bare model name, as validate_feature_views does.
    specs.update({view.model: view.spec for view in views.values() if view.version is not None and view.latest})
    settings = renderer.call("in_process_settings")
    json_types = set(renderer.call("on_demand_types"))
    result = {}
    for node in sorted(nodes, key=lambda node: node["name"]):
        spec = renderer.call("on_demand_view_spec", node, specs)
        result[spec["name"]] = OnDemandView(
            name=spec["name"],
            description=spec.get("description") or "",
            sources=tuple((source["view"], tuple(source["features"])) for source in spec["sources"]),
            request_fields=tuple(RequestField(f["name"], f["data_type"]) for f in spec["request_fields"]),
            features=tuple(Feature(f["name"], f["data_type"], f.get("description") or "") for f in spec["features"]),
            sql=renderer.call("on_demand_select", spec, None, None, [], True),
            json_sql=(
                renderer.call("on_demand_select", spec, None, None, [], "json")
                if all(input_["data_type"] in json_types for input_ in spec["inputs"])
                else None
            ),
            settings=dict(settings or {}),
            spec=spec,
            unique_id=node.get("unique_id"),
        )
    return result
