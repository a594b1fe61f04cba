"""The catalog: what each feature view is, who owns it, and how fresh it is (`featurestore describe`),
and what each on-demand view computes from what.

Plain rows from what the registry read (features, types, descriptions, entity, TTL, owner,
versions, the feature services that use a view), the online store's status (last export) and
dbt's source freshness results; nothing here reads the manifest or Redis itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from serving.monitoring.freshness import SourceFreshness
from serving.registry import Feature, FeatureView, OnDemandView, Registry

if TYPE_CHECKING:  # the CLI imports this module; it need not load the Redis client for that
    from serving.online.status import ViewStatus


def describe_views(
    registry: Registry,
    views: Sequence[FeatureView],
    statuses: Mapping[str, ViewStatus] | None,
    online_error: str | None,
    freshness: Mapping[str, SourceFreshness],
) -> list[dict[str, Any]]:
    """One plain row per view. `statuses`: the online status of each online view, or None
    with `online_error` when Redis could not be asked."""
    rows = []
    for view in views:
        versions = [other.name for other in registry.views.values() if other.version is not None and other.model == view.model]
        rows.append(
            {
                "kind": "feature_view",
                "name": view.name,
                "model": view.model,
                "version": view.version,
                "latest": view.latest,
                "versions": versions,
                "description": view.description,
                "entity": {key: view.entity_types.get(key) for key in view.entity},
                "timestamp_column": view.timestamp_column,
                "created_timestamp_column": view.created_timestamp_column,
                "ttl": view.ttl,
                "online": view.online,
                "owner": view.owner,
                "tags": list(view.tags),
                "lifecycle": view.lifecycle,
                "features": describe_features(view.features),
                "feature_services": _services_using(registry, view.name),
                "last_export": _last_export(view, statuses, online_error),
                "sources": [freshness.get(name) or SourceFreshness(name, None, None, None, None, None, None) for name in view.sources],
            }
        )
    return rows


def describe_on_demand_view(view: OnDemandView) -> dict[str, Any]:
    """What a client sends for an on-demand view (its request fields, beside the entity keys
    of its sources) and what it gets back; also the HTTP server's /feature-views entry."""
    return {
        "name": view.name,
        "description": view.description,
        "sources": view.source_references,
        "request_fields": [{"name": f.name, "type": f.data_type} for f in view.request_fields],
        "features": describe_features(view.features),
    }


def describe_on_demand_views(registry: Registry, views: Sequence[OnDemandView]) -> list[dict[str, Any]]:
    """Catalog rows of on-demand views: describe_on_demand_view, plus owner, tags and the
    feature services that use each."""
    return [
        {
            "kind": "on_demand_feature_view",
            **describe_on_demand_view(view),
            "owner": view.spec.get("owner"),
            "tags": list(view.spec.get("tags") or []),
            "feature_services": _services_using(registry, view.name),
        }
        for view in views
    ]


def describe_features(features: Sequence[Feature]) -> list[dict[str, Any]]:
    return [{"name": f.name, "type": f.data_type, "description": f.description} for f in features]


def _services_using(registry: Registry, view: str) -> list[str]:
    return [service.name for service in registry.services.values() if view in service.views]


def _last_export(view: FeatureView, statuses: Mapping[str, ViewStatus] | None, online_error: str | None) -> dict[str, Any] | None:
    if not view.online:
        return None
    if statuses is None:
        return {"error": online_error}
    status = statuses.get(view.name)
    if status is None or status.version is None:
        return {"version": None}
    return {
        "version": status.version,
        "as_of": status.as_of,
        "exported_at": status.exported_at,
        "entities": status.entities,
        "age_seconds": status.age_seconds,
    }
