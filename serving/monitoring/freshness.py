"""Source freshness: when each dbt source last received a row, as `dbt source freshness` found it.

We read dbt's own artifact, target/sources.json, rather than run a freshness query of our
own. dbt then keeps its semantics (loaded_at_field or loaded_at_query, filters, metadata-based
freshness, warn/error criteria, each adapter's SQL), and `featurestore status` needs only
Redis and a file, never a warehouse session (which on Spark means starting a JVM). The cost:
the answer is as recent as the last `dbt source freshness` run, so every result carries the
time dbt checked, and a source never checked says so.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from serving.errors import RegistryError
from serving.registry import DeclaredFreshness

SOURCES_JSON = Path("target") / "sources.json"


@dataclass(frozen=True)
class SourceFreshness:
    source: str
    status: str | None  # pass, warn, error, runtime error; None: not checked yet
    max_loaded_at: dt.datetime | None  # the newest loaded_at value dbt found (UTC)
    checked_at: dt.datetime | None  # when dbt checked (UTC)
    age_seconds: float | None  # checked_at - max_loaded_at
    warn_after: str | None
    error_after: str | None
    error: str | None = None


def source_freshness(project_dir: Path, declared: Mapping[str, DeclaredFreshness]) -> dict[str, SourceFreshness]:
    """The last `dbt source freshness` result of every source that declares freshness."""
    results = _results(project_dir / SOURCES_JSON)
    found = {}
    for name, source in declared.items():
        result = results.get(source.unique_id)
        if result is None:
            found[name] = SourceFreshness(name, None, None, None, None, source.warn_after, source.error_after)
            continue
        loaded, checked = _time(result.get("max_loaded_at")), _time(result.get("snapshotted_at"))
        found[name] = SourceFreshness(
            name,
            str(result.get("status")),
            loaded,
            checked,
            result.get("max_loaded_at_time_ago_in_s"),
            source.warn_after,
            source.error_after,
            " ".join(str(result["error"]).split()) if result.get("error") else None,
        )
    return found


def _results(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    try:
        results = json.loads(path.read_text()).get("results")
    except (OSError, ValueError, AttributeError) as error:
        raise RegistryError(f"{path} is not dbt's source freshness output ({error}); run `dbt source freshness` again") from error
    if not isinstance(results, list):
        raise RegistryError(f"{path} has no results list; run `dbt source freshness` again")
    return {result["unique_id"]: result for result in results if isinstance(result, dict) and "unique_id" in result}


def _time(text: Any) -> dt.datetime | None:
    if not text:
        return None
    moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment
