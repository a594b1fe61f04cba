"""FeatureStore: the one entry point, with Feast's names and shapes."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import redis
from redis.cluster import RedisCluster

from serving.catalog import describe_on_demand_views, describe_views
from serving.datasets import SavedDataset, SavedDatasets, Verification, check_name
from serving.engines import Engine, open_target_engine
from serving.entities import entity_frame
from serving.errors import InputError, OnlineStoreError, UnknownFeatureError
from serving.monitoring.drift import DriftReport
from serving.monitoring.drift_sources import DriftSources, compare
from serving.monitoring.freshness import SourceFreshness, source_freshness
from serving.monitoring.serving_log import FlushSummary, ServingLogFlusher, ServingLogWriter, fraction, maxlen_from_env, rate_from
from serving.monitoring.skew import SkewChecker, SkewReport, Thresholds
from serving.offline import OfflineStore, to_utc_naive
from serving.online.connection import Nodes, connect, redis_call, resolve_prefix, resolve_url
from serving.online.export import Exporter, MaterializeSummary
from serving.online.keys import KeySpace
from serving.online.read import OnlineClient, OnlineResponse
from serving.online.status import ViewStatus, online_status
from serving.online.versions import Timing, Versions
from serving.registry import FeatureService, FeatureView, OnDemandView, Registry, load_manifest
from serving.rendering import Renderer


class FeatureStore:
    """Feature views declared in a dbt project, served offline (the dbt target's warehouse)
    and online (Redis). `target` selects the profile's output as `dbt --target` does
    (default: the profile's own default target). `serving_log_rate` is the share of online
    reads logged (default $FEATURE_STORE_SERVING_LOG_RATE, else 0: off; see serving.monitoring).

    >>> store = FeatureStore(project_dir=".")
    >>> store.list_feature_views()
    """

    def __init__(
        self,
        project_dir: str | os.PathLike[str] = ".",
        redis_url: str | None = None,
        redis_prefix: str | None = None,
        target: str | None = None,
        serving_log_rate: float | None = None,
    ) -> None:
        self.project_dir = Path(project_dir).resolve()
        self.target = target
        self.redis_url = resolve_url(redis_url)
        self.redis_prefix = resolve_prefix(redis_prefix)
        self._keys = KeySpace(self.redis_prefix)
        self._timing = Timing.from_env()
        self._nodes: Nodes | None = None
        self._online: OnlineClient | None = None
        manifest, manifest_hash = load_manifest(self.project_dir, target)
        self.renderer = Renderer(self.project_dir, manifest_hash, target)
        self.registry = Registry.from_manifest(manifest, self.renderer)
        self.offline = OfflineStore(self.renderer, self._open_engine)
        # Serving log (serving.monitoring): the share of online reads logged, 0 = off.
        self.serving_log_rate = rate_from(serving_log_rate)
        self.serving_log_source = "python"  # the HTTP server says "http"
        self._serving_log: ServingLogWriter | None = None
        self._skew_thresholds = Thresholds.from_manifest(manifest)
        self.datasets = SavedDatasets(self.offline, self.registry, self.renderer, manifest, manifest_hash)

    def _open_engine(self) -> Engine:
        return open_target_engine(self.project_dir, self.target)

    def list_feature_views(self) -> list[FeatureView]:
        return list(self.registry.views.values())

    def get_feature_view(self, name: str) -> FeatureView:
        return self.registry.view(name)

    def list_on_demand_feature_views(self) -> list[OnDemandView]:
        return list(self.registry.on_demand_views.values())

    def list_feature_services(self) -> list[FeatureService]:
        return list(self.registry.services.values())

    def get_feature_service(self, name: str) -> FeatureService:
        return self.registry.service(name)

    def get_historical_features(
        self,
        entity_df: pd.DataFrame | Sequence[Mapping[str, Any]],
        features: Sequence[str] | str | FeatureService | None = None,
        full_feature_names: bool = False,
        timestamp_column: str | None = None,
        save_as: str | None = None,
        feature_service: str | FeatureService | None = None,
    ) -> pd.DataFrame:
        """entity_df's rows, in order and with their columns, plus each feature as it was
        known at the row's timestamp (`event_timestamp`, or the only datetime column).
        entity_df may also be a list of dicts, one per row; the result is a DataFrame.
        `feature_service="<ML exposure>"` asks for that model's features instead of a list.
        `save_as` also stores the result and its lineage in the offline store under that
        name (see get_saved_dataset, verify_saved_dataset)."""
        if save_as is not None:
            check_name(save_as)
        references = self.registry.references(features, feature_service)
        entity_df = entity_frame(entity_df)
        # On-demand views' request fields are entity_df columns (serving.on_demand).
        retrieval = self.offline.retrieve(self.registry, entity_df, references, timestamp_column, full_feature_names)
        if save_as is not None:
            self.datasets.save(save_as, entity_df, references, full_feature_names, retrieval)
        return retrieval.result

    def list_saved_datasets(self) -> list[SavedDataset]:
        """Every saved training set (the latest save of each name), by name."""
        return self.datasets.latest()

    def get_saved_dataset(self, name: str) -> SavedDataset:
        """A saved training set: `.lineage`, and its rows through `.to_df()`."""
        return self.datasets.get(name)

    def verify_saved_dataset(self, name: str) -> Verification:
        """Computes a saved training set again and says whether it is equal, and if not why:
        `status` is `equal`, `data_changed` or `definitions_changed`."""
        return self.datasets.verify(name)

    def feature_drift(
        self, reference: Any, current: Any, features: Sequence[str] | None = None, bins: int = 10
    ) -> DriftReport:
        """Per feature in both samples: null rate, mean, quantiles and PSI (see
        serving.monitoring.drift). A sample is "dataset:NAME" (a saved training set), "log"
        or "log:SINCE..UNTIL" (the serving log), or a DataFrame with feature-reference
        columns. `report.to_text()`, and serving.monitoring.drift_page.write_html(report, path)."""
        return compare(DriftSources(self.offline, self.renderer, self.datasets), reference, current, features, bins)

    @property
    def redis(self) -> redis.Redis | RedisCluster:
        """The pooled client of the online store: one node, or a cluster (connects lazily)."""
        return self._online_nodes().client

    def _online_nodes(self) -> Nodes:
        if self._nodes is None:
            self._nodes = Nodes(self.redis_url, connect(self.redis_url))
        return self._nodes

    def materialize(
        self,
        as_of: dt.datetime | str | None = None,
        feature_views: Sequence[str] | str | None = None,
        incremental: bool = False,
        progress: bool | None = None,
    ) -> MaterializeSummary:
        """Writes each online view's snapshot at `as_of` (default: now, UTC) to Redis, atomically.

        Online values then equal get_historical_features at `as_of`, TTLs counted from `as_of`.
        `incremental` writes only entities whose stored bytes changed."""
        moment = to_utc_naive(as_of) if as_of is not None else dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        selected = self._online_views(feature_views)
        exporter = Exporter(self._online_nodes(), self._keys, self.offline, self._timing, progress=progress)
        return exporter.materialize(selected, moment, incremental)

    def _online_views(self, feature_views: Sequence[str] | str | None) -> list[FeatureView]:
        """The named online views (default: all of them), each once."""
        all_online = [view for view in self.registry.views.values() if view.online]
        if isinstance(feature_views, str):
            feature_views = [feature_views]  # one view's name, not its letters
        if feature_views is None:
            return all_online
        by_name = {view.name: view for view in all_online}
        # A versioned model's name alone means its latest version, as in a feature reference.
        by_name.update({model: by_name[name] for model, name in self.registry.latest.items() if name in by_name})
        unknown = [name for name in feature_views if name not in by_name]
        if unknown:
            raise UnknownFeatureError(
                f"no online feature view named {', '.join(map(repr, unknown))}; online feature views: {', '.join(by_name) or '(none)'}"
            )
        # Each view once, even when named both ways.
        return list({by_name[name].name: by_name[name] for name in feature_views}.values())

    def collect_garbage(self, grace_seconds: float | None = None) -> int:
        """Deletes snapshot versions replaced longer ago than the grace period (default
        $FEATURE_STORE_GC_GRACE_SECONDS, 60 s) and those of dead exports; returns how many.
        materialize does this after every run."""
        versions = Versions(self._online_nodes(), self._keys, self._timing)
        return redis_call(self.redis_url, versions.collect, grace_seconds)

    def online_status(self) -> list[ViewStatus]:
        """Per online view: the snapshot readers get now, its as_of, entity count and age."""
        views = [view.name for view in self.registry.views.values() if view.online]
        return redis_call(self.redis_url, online_status, self._online_nodes().client, self._keys, views)

    def source_freshness(self) -> list[SourceFreshness]:
        """Each source that declares dbt `freshness:`, as the last `dbt source freshness` found it
        (target/sources.json): status, newest loaded_at, when dbt checked."""
        return list(source_freshness(self.project_dir, self.registry.source_freshness).values())

    def describe(self, feature_view: str | None = None) -> list[dict[str, Any]]:
        """The catalog: per view (or one view, `feature_view`, versions allowed) its features with
        types and descriptions, entity, TTL, owner, online flag, feature services, last export
        and the freshness of its sources; then each on-demand view (`kind` tells the two apart):
        its sources, request fields and features. Works with Redis down: the export then
        names the error."""
        on_demand = self.registry.on_demand_views
        if feature_view is not None and feature_view in on_demand:
            return describe_on_demand_views(self.registry, [on_demand[feature_view]])
        views = [self.registry.view(feature_view)] if feature_view is not None else self.list_feature_views()
        statuses, online_error = None, None
        if any(view.online for view in views):
            try:
                statuses = {status.view: status for status in self.online_status()}
            except OnlineStoreError as error:
                online_error = str(error)
        freshness = source_freshness(self.project_dir, self.registry.source_freshness)
        rows = describe_views(self.registry, views, statuses, online_error, freshness)
        return rows if feature_view is not None else rows + describe_on_demand_views(self.registry, self.list_on_demand_feature_views())

    def get_online_features(
        self,
        features: Sequence[str] | str | FeatureService | None = None,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]] | pd.DataFrame | None = None,
        full_feature_names: bool = False,
        feature_service: str | FeatureService | None = None,
    ) -> OnlineResponse:
        """The latest materialized values for each entity row, in one Redis round trip.

        Each value comes with a status (present, null, missing, outside_ttl) and its
        event timestamp: see OnlineResponse. entity_rows: a list of dicts, one per entity,
        or (as in Feast) a dict of lists or a DataFrame, one column per key.
        `feature_service="<ML exposure>"` asks for that model's features instead of a list."""
        if feature_service is not None or features is None or isinstance(features, FeatureService):
            features = self.registry.references(features, feature_service)
        if entity_rows is None:
            raise InputError("no entity_rows given; pass entity_rows=[{key: value, ...}, ...]")
        if self._online is None:
            self._online = OnlineClient(self._online_nodes(), self._keys, self.registry, self._timing)
        response = redis_call(self.redis_url, self._online.get_online_features, features, entity_rows, full_feature_names)
        if self.serving_log_rate:
            # What came from the snapshots: for on-demand views, the feature values they read.
            self._serving_log_writer().record(*self._online.served_from_snapshots(features, full_feature_names, response))
        return response

    def _serving_log_writer(self) -> ServingLogWriter:
        if self._serving_log is None:
            self._serving_log = ServingLogWriter(
                self._online_nodes(), self._keys, self.registry, self.serving_log_rate, maxlen_from_env(), self.serving_log_source
            )
        return self._serving_log

    def drain_serving_log(self) -> None:
        """Sends the serving log's buffered entries to Redis now (a few reads' worth are
        sent together; the HTTP server calls this on shutdown, other processes at exit)."""
        if self._serving_log is not None:
            self._serving_log.drain()

    def flush_serving_log(self) -> FlushSummary:
        """Moves the serving log from Redis into the warehouse table dbt reads as
        source('feature_store', 'serving_log'); see serving.monitoring.serving_log."""
        self.drain_serving_log()
        flusher = ServingLogFlusher(self._online_nodes().client, self._keys, self.offline.engine, self.renderer, self.registry)
        return redis_call(self.redis_url, flusher.flush)

    def serving_skew(
        self,
        since: dt.datetime | str | None = None,
        feature_views: Sequence[str] | str | None = None,
        threshold: float | None = None,
    ) -> SkewReport:
        """Per feature: logged served values against the point-in-time join at the
        snapshot's as_of and at the request time, with each mismatch's cause
        (`featurestore skew`). Thresholds come from the project's no_serving_skew test;
        `threshold` replaces its default."""
        online = self._online_views(feature_views or None)
        thresholds = self._skew_thresholds
        if threshold is not None:
            thresholds = Thresholds(fraction(threshold, "threshold", "a mismatch rate"), thresholds.per_feature)
        return SkewChecker(self.offline, self.renderer).report(online, thresholds, since)
