"""`featurestore`: a thin command line over FeatureStore. Every command has a Python twin.

Exit codes: 0 success, 1 a feature-store error (message on stderr), 2 bad usage, 3 an
internal error (a bug: one line on stderr naming the file that holds the traceback),
4 skew above its threshold (`featurestore skew`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

import click
import pandas as pd

from serving.catalog import describe_features
from serving.errors import EntityKeyError, FeatureStoreError, InputError
from serving.entities_file import EPOCH_UNITS, INTEGER_TEXT, read_entities
from serving.registry import FeatureView, Registry

INTERNAL_ERROR_EXIT = 3
SKEW_EXIT = 4  # `featurestore skew`: a feature's mismatch rate is above its threshold
# Python keyword arguments that messages suggest, and the flag a CLI user types instead.
_FLAGS = {"timestamp_column": "--timestamp-column", "full_feature_names": "--full-feature-names", "project_dir": "--project-dir"}
_SUGGESTED = re.compile(rf"\b({'|'.join(_FLAGS)})=(True|\.\.\.)")


def cli_message(error: FeatureStoreError) -> str:
    """The error's message with the Python arguments it suggests spelled as this CLI's flags."""
    return _SUGGESTED.sub(lambda match: _FLAGS[match[1]] + (" ..." if match[2] == "..." else ""), str(error))


def _fail_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """One clear line on stderr: exit 1 for every error the user can fix, and exit 3 for a
    bug, whose traceback goes to a file rather than the user's screen."""

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FeatureStoreError as error:
            click.echo(f"error: {cli_message(error)}", err=True)
            sys.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            where = _write_traceback()
            summary = " ".join(str(error).split())[:200]
            click.echo(
                f"internal error (a bug in featurestore): {type(error).__name__}: {summary}; the full traceback is in {where}",
                err=True,
            )
            sys.exit(INTERNAL_ERROR_EXIT)

    run.__name__ = command.__name__
    run.__doc__ = command.__doc__
    return run


def _write_traceback() -> str:
    handle, name = tempfile.mkstemp(prefix="featurestore-traceback-", suffix=".txt")
    with open(handle, "w") as file:
        file.write(f"featurestore {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
    return name


def _store(ctx: click.Context) -> Any:
    from serving.store import FeatureStore

    return FeatureStore(project_dir=ctx.obj["project_dir"], redis_url=ctx.obj["redis_url"], target=ctx.obj["target"])


def _say_which_redis(store: Any) -> None:
    """Names the Redis a command used (password masked), on stderr so JSON on stdout stays clean.
    Only after success: an error message names the server itself, in one line."""
    from serving.online.connection import mask_password

    click.echo(f"online store: {mask_password(store.redis_url)} (key prefix '{store.redis_prefix}')", err=True)


def _parse_as_of(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time; e.g. 2026-02-01T12:00:00Z or 2026-02-01", param_hint="--as-of") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return vars(value)
    return str(value)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--project-dir", default=".", show_default=True, type=click.Path(file_okay=False), help="The dbt project.")
@click.option(
    "--redis-url",
    envvar="REDIS_URL",
    help="Online store: redis://host:port/db, or redis+cluster://host:port[,host:port...] (default: $REDIS_URL, else redis://localhost:6379/0).",
)
@click.option(
    "--target",
    envvar="DBT_TARGET",
    help="The dbt profile target whose warehouse serves offline reads, as `dbt --target` (default: $DBT_TARGET, else the profile's default).",
)
@click.pass_context
def main(ctx: click.Context, project_dir: str, redis_url: str | None, target: str | None) -> None:
    """A SQL-first feature store: dbt models are the features, the dbt target's warehouse the offline store, Redis the online store."""
    ctx.obj = {"project_dir": project_dir, "redis_url": redis_url, "target": target}


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@_fail_cleanly
def list_views(ctx: click.Context, as_json: bool) -> None:
    """List feature views with their entities, TTLs and features."""
    store = _store(ctx)
    views = store.list_feature_views()
    if as_json:
        click.echo(json.dumps([_describe(view) for view in views], indent=2))
        return
    for view in views:
        flags = ", ".join(filter(None, [f"ttl {view.ttl}" if view.ttl else "no ttl", "online" if view.online else "offline"]))
        click.echo(f"{view.name}  [{', '.join(view.entity)}]  ({flags})")
        for feature in view.features:
            click.echo(f"    {feature.name}: {feature.data_type or '?'}  {feature.description}")
    for on_demand in store.list_on_demand_feature_views():
        fields = ", ".join(f"{field.name} {field.data_type}" for field in on_demand.request_fields) or "none"
        click.echo(f"{on_demand.name}  (on demand: reads {', '.join(view for view, _ in on_demand.sources)}; request fields: {fields})")
        for feature in on_demand.features:
            click.echo(f"    {feature.name}: {feature.data_type}  {feature.description}")


def _describe(view: FeatureView) -> dict[str, Any]:
    return {
        "name": view.name,
        "entity": list(view.entity),
        "timestamp_column": view.timestamp_column,
        "ttl": view.ttl,
        "online": view.online,
        "owner": view.owner,
        "tags": list(view.tags),
        "description": view.description,
        "features": describe_features(view.features),
    }


@main.command()
@click.option("--as-of", help="Snapshot time (ISO 8601; default: now, UTC).")
@click.option("--select", "selected", multiple=True, help="Feature view to export (repeatable; default: every online view).")
@click.option("--incremental", is_flag=True, help="Write only entities whose values changed.")
@click.pass_context
@_fail_cleanly
def materialize(ctx: click.Context, as_of: str | None, selected: tuple[str, ...], incremental: bool) -> None:
    """Export the snapshot of online feature views at AS_OF to Redis."""
    store = _store(ctx)
    summary = store.materialize(as_of=_parse_as_of(as_of), feature_views=list(selected) or None, incremental=incremental)
    click.echo(str(summary))
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    _say_which_redis(store)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@_fail_cleanly
def status(ctx: click.Context, as_json: bool) -> None:
    """Freshness of each online view: the snapshot served now, its as_of, entities and age."""
    store = _store(ctx)
    statuses = store.online_status()
    _say_which_redis(store)
    freshness = {source.source: source for source in store.source_freshness()}
    if as_json:
        # Each view with the freshness of the dbt sources it reads (`dbt source freshness`).
        rows = [{**vars(status), "sources": [freshness[name] for name in store.get_feature_view(status.view).sources if name in freshness]}
                for status in statuses]
        click.echo(json.dumps(rows, default=_json_default, indent=2))
        return
    _print_status(statuses)
    for source in freshness.values():
        click.echo(f"source {_freshness_text(source)}")


def _print_status(statuses: list[Any]) -> None:
    for view in statuses:
        if view.version is None:
            click.echo(f"{view.view}: never materialized")
            continue
        click.echo(
            f"{view.view}: version {view.version}, as of {view.as_of.isoformat()} ({_age(view.age_seconds)} ago), "
            f"{view.entities:,} entities, exported {view.exported_at.isoformat(timespec='seconds')}Z"
        )


def _freshness_text(source: Any) -> str:
    criteria = ", ".join(filter(None, [source.warn_after and f"warn after {source.warn_after}", source.error_after and f"error after {source.error_after}"]))
    if not criteria:
        return f"{source.source}: no freshness declared"
    if source.status is None:
        return f"{source.source}: not checked yet ({criteria}); run `dbt source freshness`"
    if source.error:
        return f"{source.source}: {source.status}: {source.error}"
    return (
        f"{source.source}: {source.status} ({criteria}): newest row loaded {_utc(source.max_loaded_at)}, "
        f"{_age(source.age_seconds)} before dbt checked at {_utc(source.checked_at)}"
    )


def _utc(moment: dt.datetime | None) -> str:
    return "?" if moment is None else moment.isoformat(timespec="seconds") + "Z"


@main.command()
@click.argument("view", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
@_fail_cleanly
def describe(ctx: click.Context, view: str | None, as_json: bool) -> None:
    """The catalog of VIEW (default: every view): features with types and descriptions,
    entity, TTL, owner, online flag, feature services, last export and source freshness;
    for an on-demand view, its sources and request fields."""
    store = _store(ctx)
    rows = store.describe(view)
    if as_json:
        click.echo(json.dumps(rows, default=_json_default, indent=2))
        return
    for number, row in enumerate(rows):
        if number:
            click.echo()
        _print_description(row)


def _print_description(row: dict[str, Any]) -> None:
    if row["kind"] == "on_demand_feature_view":
        _print_on_demand(row)
        return
    version = f"  (version {row['version']} of {row['model']}{', latest' if row['latest'] else ''}; versions: {', '.join(row['versions'])})" if row["version"] else ""
    click.echo(f"{row['name']}{version}")
    if row["description"]:
        click.echo(f"  {row['description']}")
    entity = ", ".join(f"{key} ({data_type or '?'})" for key, data_type in row["entity"].items())
    click.echo(f"  entity: {entity}   event time: {row['timestamp_column']}   ttl: {row['ttl'] or 'none'}")
    tags = f"   tags: {', '.join(row['tags'])}" if row["tags"] else ""
    click.echo(f"  owner: {row['owner'] or '(none)'}{tags}")
    click.echo(f"  online: {_export_text(row['last_export'])}")
    for source in row["sources"]:
        click.echo(f"  source {_freshness_text(source)}")
    if row["feature_services"]:
        click.echo(f"  used by feature services: {', '.join(row['feature_services'])}")
    _print_features(row["features"])


def _print_on_demand(row: dict[str, Any]) -> None:
    click.echo(f"{row['name']}  (on demand: computed per request, never exported)")
    if row["description"]:
        click.echo(f"  {row['description']}")
    fields = ", ".join(f"{field['name']} ({field['type']})" for field in row["request_fields"]) or "none"
    click.echo(f"  reads: {', '.join(row['sources'])}")
    click.echo(f"  request fields: {fields}")
    tags = f"   tags: {', '.join(row['tags'])}" if row["tags"] else ""
    click.echo(f"  owner: {row['owner'] or '(none)'}{tags}")
    if row["feature_services"]:
        click.echo(f"  used by feature services: {', '.join(row['feature_services'])}")
    _print_features(row["features"])


def _print_features(features: list[dict[str, Any]]) -> None:
    click.echo(f"  features ({len(features)}):")
    width = max(len(feature["name"]) for feature in features) if features else 0
    for feature in features:
        click.echo(f"    {feature['name']:<{width}}  {feature['type'] or '?':<9}  {feature['description']}")


def _export_text(export: dict[str, Any] | None) -> str:
    if export is None:
        return "no (offline only)"
    if "error" in export:
        return f"yes; last export unknown: {export['error']}"
    if export["version"] is None:
        return "yes; never materialized"
    return (
        f"yes; last export: version {export['version']}, as of {export['as_of'].isoformat()} ({_age(export['age_seconds'])} old), "
        f"{export['entities']:,} entities, exported {export['exported_at'].isoformat(timespec='seconds')}Z"
    )


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.0f} min"
    if abs(seconds) < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _parse_entities(store: Any, references: tuple[str, ...], pairs: tuple[str, ...]) -> list[dict[str, Any]]:
    """`--entity key=value` pairs, in order, as entity rows: a key already in the current row
    starts the next one, so `user_id=1 user_id=2` is two rows and `user_id=1 category=books` one.
    On-demand views' request fields are given the same way (`--entity amount=12.5`)."""
    key_types = Registry.key_types(view for view, _ in store.registry.source_views(references))
    request_types = {
        field.name: field.data_type
        for view, _ in store.registry.resolve_any(references)
        for field in getattr(view, "request_fields", ())
    }
    rows: list[dict[str, Any]] = [{}]
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise EntityKeyError(f"--entity '{pair}' is not key=value; keys: {', '.join([*key_types, *request_types])}")
        if key in rows[-1]:
            rows.append({})
        if key in request_types:
            rows[-1][key] = _request_value(key, text, request_types[key])
        elif key_types.get(key) is int:
            # Python's int() would also take '1_000' and ' 1'; a key is written as digits.
            if not INTEGER_TEXT.fullmatch(text):
                raise EntityKeyError(f"entity key {key} is an integer; got '{text}'")
            rows[-1][key] = int(text)
        else:
            rows[-1][key] = text
    return rows


def _request_value(name: str, text: str, data_type: str) -> Any:
    """A request field's value as typed on the command line; `null` is NULL unless it is text."""
    if data_type == "varchar":
        return text
    if text == "null":
        return None
    if data_type in ("integer", "bigint") and INTEGER_TEXT.fullmatch(text):
        return int(text)
    if data_type == "boolean" and text in ("true", "false"):
        return text == "true"
    if data_type == "double":
        try:
            return float(text)
        except ValueError:
            pass
    needs = {"integer": "an integer", "bigint": "an integer", "boolean": "true or false", "double": "a number"}[data_type]
    raise InputError(f"request field {name} is {data_type}; got '{text}', which is not {needs} (or null)")


def _requested(store: Any, features: list[str], service: str | None) -> list[str]:
    """The feature references of a command: its features, or its --feature-service's."""
    if service is not None and features:
        raise click.UsageError("give either features or --feature-service, not both")
    if service is None and not features:
        raise click.UsageError("give features (view:feature ...) or --feature-service NAME")
    return store.registry.references(features or None, service)


@main.command()
@click.argument("features", nargs=-1)
@click.option("--feature-service", "service", help="Read the features of this feature service (an ML exposure) instead.")
@click.option("--entity", "entities", multiple=True, required=True,
              help="Entity key as key=value; repeat for a composite key, and repeat a key to read another entity. "
              "On-demand views' request fields go here too (amount=12.5).")
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@click.pass_context
@_fail_cleanly
def get(ctx: click.Context, features: tuple[str, ...], service: str | None, entities: tuple[str, ...], full_feature_names: bool) -> None:
    """Read online FEATURES (view:feature ...) for one or more entities; prints JSON, one list entry per entity."""
    store = _store(ctx)
    references = _requested(store, list(features), service)
    rows = _parse_entities(store, tuple(references), entities)
    response = store.get_online_features(references, rows, full_feature_names=full_feature_names)
    click.echo(json.dumps(response.to_dict(include_metadata=True), default=_json_default, indent=2))
    _say_which_redis(store)


@main.command()
@click.option("--entities", "entities_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Parquet or CSV: entity keys and a timestamp.")
@click.option("--features", "features", multiple=True, help="view:feature (repeatable, or comma-separated).")
@click.option("--feature-service", "service", help="The features of this feature service (an ML exposure) instead of --features.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), help="Output .parquet or .csv.")
@click.option("--save-as", help="Also save the result and its lineage in the offline store under this name (see `dataset`).")
@click.option("--timestamp-column", help="Timestamp column of the entities file (default: event_timestamp).")
@click.option("--timestamp-format", help="strftime layout of text timestamps, e.g. '%d/%m/%Y %H:%M' (default: ISO 8601 only).")
@click.option("--timestamp-unit", type=click.Choice(EPOCH_UNITS), help="Timestamps are epoch numbers in this unit.")
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@click.pass_context
@_fail_cleanly
def historical(
    ctx: click.Context,
    entities_path: Path,
    features: tuple[str, ...],
    service: str | None,
    out_path: Path | None,
    save_as: str | None,
    timestamp_column: str | None,
    timestamp_format: str | None,
    timestamp_unit: str | None,
    full_feature_names: bool,
) -> None:
    """Point-in-time correct training data for the rows of an entities file, written to
    --out, saved in the offline store with --save-as, or both.

    Text timestamps (CSV) are ISO 8601 (no offset means UTC) unless --timestamp-format or
    --timestamp-unit says otherwise; integer keys must be written as integers."""
    if out_path is None and save_as is None:
        raise click.UsageError("give --out FILE, --save-as NAME, or both")
    if out_path is not None:
        _check_out(out_path)
    store = _store(ctx)
    references = _requested(store, [part for item in features for part in item.split(",") if part], service)
    key_types = Registry.key_types(view for view, _ in store.registry.source_views(references))
    column = timestamp_column or "event_timestamp"
    entity_df = read_entities(entities_path, key_types, column, timestamp_format, timestamp_unit)
    result = store.get_historical_features(
        entity_df, references, full_feature_names=full_feature_names, timestamp_column=column, save_as=save_as
    )
    if save_as is not None:
        click.echo(f"saved {len(result)} rows x {len(result.columns)} columns as dataset {save_as}")
    if out_path is None:
        return
    # Written beside the target, then renamed: a failed run leaves no half-written file.
    partial = out_path.with_name(out_path.name + ".partial")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if out_path.suffix == ".parquet":
            result.to_parquet(partial, index=False)
        else:
            result.to_csv(partial, index=False)
        partial.replace(out_path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise InputError(f"cannot write --out {out_path}: {error.strerror or error}") from error
    click.echo(f"wrote {len(result)} rows x {len(result.columns)} columns to {out_path}")


def _check_out(path: Path) -> None:
    """Refuses an output path that cannot be written before any work is done."""
    if path.suffix not in (".parquet", ".csv"):
        raise InputError(f"--out {path} must end in .parquet or .csv")
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise InputError(f"--out {path}: {folder} is a file, not a folder; choose an output path in a folder")
            return


@main.group()
def dataset() -> None:
    """Saved training sets (historical --save-as NAME): list, show, verify."""


@dataset.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@_fail_cleanly
def dataset_list(ctx: click.Context, as_json: bool) -> None:
    """List saved training sets: name, creation time, rows, features."""
    saved = _store(ctx).list_saved_datasets()
    if as_json:
        click.echo(json.dumps([s.lineage for s in saved], indent=2))
        return
    if not saved:
        click.echo("no saved datasets (save one with `featurestore historical ... --save-as NAME`)")
    for item in saved:
        click.echo(f"{item.name}  {item.created_at.isoformat(timespec='seconds')}Z  {item.rows} rows  {', '.join(item.features)}")


@dataset.command("show")
@click.argument("name")
@click.pass_context
@_fail_cleanly
def dataset_show(ctx: click.Context, name: str) -> None:
    """Print the lineage record of saved training set NAME (JSON)."""
    click.echo(json.dumps(_store(ctx).get_saved_dataset(name).lineage, indent=2, sort_keys=True))


@dataset.command("verify")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
@_fail_cleanly
def dataset_verify(ctx: click.Context, name: str, as_json: bool) -> None:
    """Compute saved training set NAME again and say whether it is equal, and if not why.

    Exit codes: 0 equal; 4 data changed (same definitions, different rows); 5 definitions
    changed (a feature view's SQL, config or upstream, or the join macros); 1 an error,
    such as an unknown NAME."""
    verification = _store(ctx).verify_saved_dataset(name)
    click.echo(json.dumps(verification.to_dict(), indent=2) if as_json else str(verification))
    sys.exit(verification.exit_code)


@main.command()
@click.argument("reference")
@click.argument("current")
@click.option("--feature", "features", multiple=True, help="Compare only this feature reference (repeatable; default: all in both).")
@click.option("--bins", default=10, show_default=True, type=click.IntRange(2, 100), help="PSI bins (the reference's quantiles).")
@click.option("--html", "html_path", default="drift.html", show_default=True, type=click.Path(dir_okay=False, path_type=Path), help="Where to write the page of histograms.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--fail-above", type=float, help="Exit 4 when some feature's PSI is above this (e.g. 0.25).")
@click.pass_context
@_fail_cleanly
def drift(
    ctx: click.Context, reference: str, current: str, features: tuple[str, ...], bins: int, html_path: Path, as_json: bool, fail_above: float | None
) -> None:
    """Compare two samples of the features: null rate, mean, quantiles and PSI per feature,
    printed and drawn as histograms in an HTML page (--html).

    REFERENCE and CURRENT are each dataset:NAME (a saved training set), log (the whole
    serving log) or log:SINCE..UNTIL (its reads in that range; ISO 8601, either may be empty)."""
    from serving.monitoring.drift_page import write_html

    report = _store(ctx).feature_drift(reference, current, features=list(features) or None, bins=bins)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.to_text())
    click.echo(f"wrote {write_html(report, html_path)}", err=True)
    if fail_above is not None and any(f.psi is not None and f.psi > fail_above for f in report.features):
        sys.exit(4)


@main.command()
@click.option("--users", default=2000, show_default=True, help="Sample users to generate.")
@click.pass_context
@_fail_cleanly
def demo(ctx: click.Context, users: int) -> None:
    """The whole loop on sample data: dbt build, training set, materialize, online reads."""
    from serving.demo import run_demo

    run_demo(Path(ctx.obj["project_dir"]), ctx.obj["redis_url"], users=users)


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@_fail_cleanly
def init(directory: Path) -> None:
    """Create a new feature repository in DIRECTORY (new or empty): a dbt project using this
    one as a dbt package, its profile, sample data, a feature view and a training set."""
    from serving.scaffold import init_repository

    made = init_repository(directory)
    click.echo(f"created {directory}: dbt project '{made.project_name}' using the feature_store dbt package")
    for file in made.files:
        click.echo(f"  {file}")
    click.echo(f"next: cd {directory} && dbt deps && dbt build")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=6566, show_default=True, type=click.IntRange(1, 65535), help="TCP port (Feast's feature server default).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Worker processes.")
@click.pass_context
@_fail_cleanly
def serve(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Serve online features over HTTP: Feast's POST /get-online-features, GET /health, /feature-views, /metrics."""
    from serving.http import serve as run_server

    run_server(ctx.obj["project_dir"], ctx.obj["redis_url"], host, port, workers)


@main.group()
def logs() -> None:
    """The serving log: online reads sampled into Redis (serving_log_rate or FEATURE_STORE_SERVING_LOG_RATE)."""


@logs.command("flush")
@click.pass_context
@_fail_cleanly
def logs_flush(ctx: click.Context) -> None:
    """Move the serving log from Redis into the warehouse table source('feature_store', 'serving_log')."""
    store = _store(ctx)
    click.echo(str(store.flush_serving_log()))
    _say_which_redis(store)


@main.command()
@click.option("--since", help="Only requests from this time on (ISO 8601; default: the whole log).")
@click.option("--view", "views", multiple=True, help="Online feature view to check (repeatable; default: every one).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--threshold", type=float, help="Mismatch rate allowed for features the no_serving_skew test names no rate for.")
@click.pass_context
@_fail_cleanly
def skew(ctx: click.Context, since: str | None, views: tuple[str, ...], output_format: str, threshold: float | None) -> None:
    """Training/serving skew per feature from the flushed serving log: rows compared, mismatches and
    their causes, largest difference, examples. Exits 4 when a feature is above its threshold."""
    try:
        moment = dt.datetime.fromisoformat(since.strip()) if since is not None else None
    except ValueError:
        raise click.BadParameter(f"{since!r} is not an ISO 8601 time; e.g. 2026-02-01T12:00:00Z or 2026-02-01", param_hint="--since") from None
    store = _store(ctx)
    report = store.serving_skew(since=moment, feature_views=list(views) or None, threshold=threshold)
    click.echo(report.to_json() if output_format == "json" else report.to_text())
    if report.above_threshold:
        sys.exit(SKEW_EXIT)


if __name__ == "__main__":
    main()
