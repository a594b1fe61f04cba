"""Load the raw Parquet files into PostgreSQL, which cannot read Parquet itself.

Each `<name>.parquet` in the folder becomes table `<schema>.<name>` (default schema `raw`,
where models/staging/sources.yml looks), replaced whole in one transaction, rows in file
order. Connects with the variables the `postgres` target in profiles.yml reads:
FEATURE_STORE_PG_HOST, _PORT, _USER, _PASSWORD, _DBNAME (defaults 127.0.0.1, 5432,
postgres, no password, postgres).

    python sample_data/load_postgres.py [--raw data/sample] [--schema raw]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

# Arrow types and the Postgres column types they load into; timestamps keep their kind
# (naive stays naive, which means UTC), at microsecond precision.
POSTGRES_TYPES = {
    pa.int8(): "smallint",
    pa.int16(): "smallint",
    pa.int32(): "integer",
    pa.int64(): "bigint",
    pa.float32(): "real",
    pa.float64(): "double precision",
    pa.bool_(): "boolean",
    pa.string(): "text",
    pa.large_string(): "text",
    pa.date32(): "date",
}


class LoadError(Exception):
    """A bad argument or an unloadable file; the message says which."""


def postgres_type(field: pa.Field) -> str:
    if pa.types.is_timestamp(field.type):
        return "timestamptz" if field.type.tz else "timestamp"
    if field.type in POSTGRES_TYPES:
        return POSTGRES_TYPES[field.type]
    raise LoadError(f"column {field.name} has type {field.type}, which this loader does not map; mapped types: "
                    + ", ".join(sorted({str(t) for t in POSTGRES_TYPES} | {"timestamp"})))


def connection_info() -> str:
    env = os.environ.get
    return psycopg.conninfo.make_conninfo(
        host=env("FEATURE_STORE_PG_HOST", "127.0.0.1"),
        port=env("FEATURE_STORE_PG_PORT", "5432"),
        user=env("FEATURE_STORE_PG_USER", "postgres"),
        password=env("FEATURE_STORE_PG_PASSWORD", ""),
        dbname=env("FEATURE_STORE_PG_DBNAME", "postgres"),
        connect_timeout="10",
    )


def _microseconds(table: pa.Table) -> pa.Table:
    """Nanosecond timestamps truncated to microseconds, the feature store's precision."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
            column = table.column(index).cast(pa.timestamp("us", field.type.tz), safe=False)
            table = table.set_column(index, field.name, column)
    return table


def load_table(connection: psycopg.Connection, schema: str, name: str, table: pa.Table) -> None:
    target = sql.Identifier(schema, name)
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(field.name), sql.SQL(postgres_type(field))) for field in table.schema
    )
    connection.execute(sql.SQL("drop table if exists {}").format(target))
    connection.execute(sql.SQL("create table {} ({})").format(target, columns))
    with connection.cursor().copy(sql.SQL("copy {} from stdin").format(target)) as copy:
        for batch in _microseconds(table).to_batches(max_chunksize=50_000):
            for row in zip(*(column.to_pylist() for column in batch.columns)):
                copy.write_row(row)


def load(raw: Path, schema: str, conninfo: str) -> dict[str, int]:
    """Loads every Parquet file in `raw`; returns rows per table. All or nothing."""
    files = sorted(raw.glob("*.parquet"))
    if not files:
        raise LoadError(f"no .parquet files in {raw}; generate them with python sample_data/generate.py --out {raw}")
    tables = {path.stem: pq.read_table(path) for path in files}
    for table in tables.values():
        for field in table.schema:
            postgres_type(field)
    with psycopg.connect(conninfo) as connection:
        # One transaction: a failure leaves the previous tables as they were.
        connection.execute("set TimeZone = 'UTC'")
        connection.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        for name, table in tables.items():
            load_table(connection, schema, name, table)
    return {name: table.num_rows for name, table in tables.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=Path("data/sample"), help="folder of Parquet files (default: data/sample)")
    parser.add_argument("--schema", default="raw", help="target schema (default: raw)")
    args = parser.parse_args(argv)
    conninfo = connection_info()
    try:
        counts = load(args.raw, args.schema, conninfo)
    except LoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except psycopg.Error as error:
        location = psycopg.conninfo.conninfo_to_dict(conninfo)
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"error: PostgreSQL at {location['host']}:{location['port']} database {location['dbname']}: {message}", file=sys.stderr)
        return 1
    for name, rows in counts.items():
        print(f"{args.schema}.{name}: {rows} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
