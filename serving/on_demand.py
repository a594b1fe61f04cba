"""On-demand features: SQL expressions over source features and request fields, computed
per request. One SQL text (macros/on_demand/on_demand_select.sql) serves both paths:

- training: get_historical_features takes the request fields as entity_df columns, and
  the warehouse computes the expressions inside the point-in-time query
  (point_in_time_on_demand_sql);
- serving: get_online_features takes them in the entity rows, reads the source features
  from Redis with the rest of the request, and DuckDB computes the same SQL in process over
  those rows (serving.engines.duckdb.InProcessSQL), one query per view for every entity.

Inputs and results are cast to their declared types on both paths, so NULLs, integer and
float division come out alike. An on-demand feature is `present` when its value is not
NULL and `null` when it is; its event timestamp is the latest of its sources' rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from serving.entities import check_outputs
from serving.errors import EntityKeyError, InputError, MissingRequestFieldError
from serving.registry import FeatureView, OnDemandView, Registry, RequestField

_NEEDS = {
    "boolean": "true or false",
    "integer": "an integer",
    "bigint": "an integer",
    "double": "a number",
    "varchar": "a string",
}
# The Python values each type macros/on_demand/on_demand_view_spec.sql allows
# (on_demand_types) takes as is; numpy scalars of the same kind are converted.
PYTHON_TYPES = {
    "boolean": {bool, type(None)},
    "integer": {int, type(None)},
    "bigint": {int, type(None)},
    "double": {float, int, type(None)},
    "varchar": {str, type(None)},
}
PRESENT = "present"
NULL = "null"


def source_column(view: str, feature: str) -> str:
    """A source feature's column while a request is computed: view__feature, unambiguous."""
    return f"{view}__{feature}"


@dataclass
class OnDemandPlan:
    """What one request shape reads, sends and computes.

    `outputs`: every requested view (feature view or on-demand) with its features and
    their output column names, in request order; `reads`: the feature references to read
    (requested ones and on-demand sources); `request_fields`: name -> declared type."""

    outputs: list[tuple[FeatureView | OnDemandView, list[str], list[str]]]
    reads: list[str]
    request_fields: dict[str, str]
    entity_keys: list[str]
    _evaluators: dict[str, Any] = field(default_factory=dict, repr=False)
    _layouts: dict[str, list[Any]] = field(default_factory=dict, repr=False)

    @property
    def on_demand(self) -> list[tuple[OnDemandView, list[str], list[str]]]:
        return [(view, names, outputs) for view, names, outputs in self.outputs if isinstance(view, OnDemandView)]

    # ------------------------------------------------------------ online

    def take_request(self, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """The request fields, removed from the columns of an online request."""
        return {name: columns.pop(name) for name in self.request_fields}

    def finish(self, read: Any, request: dict[str, list[Any]], response_type: type) -> Any:
        """The response to the caller from the read of `reads` (columns view__feature):
        the entity keys, then each requested feature, computed ones included."""
        result = response_type({key: read.columns[key] for key in self.entity_keys}, source_read=read)
        for view, names, outputs in self.outputs:
            if isinstance(view, OnDemandView):
                self._compute(view, names, outputs, read, request, result)
                continue
            for name, output in zip(names, outputs):
                column = source_column(view.name, name)
                result.columns[output] = read.columns[column]
                result.statuses[output] = read.statuses[column]
                result.event_timestamps[output] = read.event_timestamps[column]
        return result

    def _compute(self, view: OnDemandView, names: list[str], outputs: list[str], read: Any, request: dict[str, list[Any]], result: Any) -> None:
        layout = self._layouts.get(view.name)
        if layout is None:
            layout = self._layouts[view.name] = _layout(view)
        inputs = []
        for name, column, data_type in layout:
            if column is None:
                inputs.append(_check_request_values(view, name, data_type, request[name]))
            else:
                inputs.append(read.columns[column])
        by_name = dict(zip(view.feature_names, self._evaluator(view).evaluate(inputs)))
        stamps = _latest([read.event_timestamps[source_column(source, features[0])] for source, features in view.sources])
        for name, output in zip(names, outputs):
            values = by_name[name]
            result.columns[output] = values
            result.statuses[output] = [NULL if value is None else PRESENT for value in values]
            result.event_timestamps[output] = stamps

    def _evaluator(self, view: OnDemandView) -> Any:
        evaluator = self._evaluators.get(view.name)
        if evaluator is None:
            from serving.engines.duckdb import InProcessSQL  # the one module that may import duckdb

            evaluator = self._evaluators[view.name] = InProcessSQL(view.sql, view.settings, json_sql=view.json_sql)
        return evaluator


def _layout(view: OnDemandView) -> list[tuple[str, str | None, str]]:
    """Each input of the view, in the SQL's parameter order: its name, its column in the
    read (None: a request field) and its declared type."""
    return [
        (input_["name"], None if input_.get("view") is None else source_column(input_["view"], input_["name"]), str(input_["data_type"]))
        for input_ in view.spec["inputs"]
    ]


def _check_request_values(view: OnDemandView, name: str, data_type: str, values: list[Any]) -> list[Any]:
    """The request field's values, each of a Python type its declared type takes (checked
    in bulk first, and value by value only when some value is not a plain Python one)."""
    if set(map(type, values)) <= PYTHON_TYPES[data_type]:
        return values
    for position, value in enumerate(values):
        if not _fits(value, data_type):
            raise InputError(
                f"entity row {position}: {name}={value!r} does not fit {data_type}; request field {name} "
                f"of on-demand view '{view.name}' needs {_NEEDS[data_type]} (or null)"
            )
    return [value.item() if isinstance(value, np.generic) else value for value in values]


def _fits(value: Any, data_type: str) -> bool:
    if value is None or type(value) in PYTHON_TYPES[data_type]:
        return True
    if isinstance(value, (bool, np.bool_)):
        return data_type == "boolean"
    if data_type in ("integer", "bigint"):
        return isinstance(value, np.integer)
    if data_type == "double":
        return isinstance(value, (np.integer, np.floating))
    return False


def _latest(columns: list[list[dt.datetime | None]]) -> list[dt.datetime | None]:
    """Per entity, the latest event timestamp among the sources' rows (None: no row)."""
    if len(columns) == 1:
        return list(columns[0])
    return [max((stamp for stamp in stamps if stamp is not None), default=None) for stamps in zip(*columns)]


def plan(registry: Registry, features: Sequence[str] | str, full_feature_names: bool) -> OnDemandPlan | None:
    """The plan of a request that names an on-demand view; None when it names none."""
    if not registry.on_demand_views:
        return None
    resolved = registry.resolve_any(features)
    if not any(isinstance(view, OnDemandView) for view, _ in resolved):
        return None
    outputs_names = Registry.output_names(resolved, full_feature_names)  # type: ignore[arg-type]
    outputs = [(view, names, names_out) for (view, names), names_out in zip(resolved, outputs_names)]
    reads: list[str] = []
    request_fields: dict[str, RequestField] = {}
    for view, names in resolved:
        if isinstance(view, OnDemandView):
            reads += view.source_references
            for request_field in view.request_fields:
                other = request_fields.setdefault(request_field.name, request_field)
                if other.data_type != request_field.data_type:
                    raise InputError(
                        f"request field {request_field.name} is {other.data_type} in one requested on-demand view and "
                        f"{request_field.data_type} in '{view.name}'; request them separately"
                    )
        else:
            reads += [f"{view.name}:{name}" for name in names]
    sources = registry.resolve(reads)
    entity_keys = list(dict.fromkeys(key for view, _ in sources for key in view.entity))
    flat = [name for names in outputs_names for name in names]
    check_outputs(flat, entity_keys, "entity key")
    check_outputs(flat, list(request_fields), "request field")
    clash = [name for name in request_fields if name in entity_keys]
    if clash:
        raise EntityKeyError(f"request field(s) {', '.join(clash)} are also entity keys of the requested views; request them separately")
    return OnDemandPlan(outputs, reads, {name: f.data_type for name, f in request_fields.items()}, entity_keys)


def missing_request_fields(plan: OnDemandPlan, given: Sequence[str], where: str) -> MissingRequestFieldError | None:
    """The error for request fields absent from `given` (entity_df columns or entity row keys)."""
    missing = [name for name in plan.request_fields if name not in set(map(str, given))]
    if not missing:
        return None
    needs = "; ".join(
        f"on-demand view '{view.name}' needs {', '.join(f'{f.name} ({f.data_type})' for f in view.request_fields)}"
        for view, _, _ in plan.on_demand
        if view.request_fields
    )
    return MissingRequestFieldError(f"{where} request field(s) {', '.join(missing)}; {needs}")


# ---------------------------------------------------------------- offline


def historical_arguments(plan: OnDemandPlan, registry: Registry) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[list[Any]]]:
    """The views, on-demand items and outputs of point_in_time_on_demand_sql."""
    sources = registry.resolve(plan.reads)
    views = [view.spec_for(features) for view, features in sources]
    on_demand, outputs = [], []
    index = 0
    for view, names, names_out in plan.outputs:
        if isinstance(view, OnDemandView):
            index += 1
            # Request fields are spine columns of their own name; source features come out of the join as view__feature.
            columns = {name: column or name for name, column, _ in _layout(view)}
            on_demand.append({"view": view.spec, "columns": columns})
            outputs += [[index, name, output] for name, output in zip(names, names_out)]
        else:
            outputs += [[0, source_column(view.name, name), output] for name, output in zip(names, names_out)]
    return views, on_demand, outputs
