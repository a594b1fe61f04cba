"""Shared test support: a fresh UTC database on the machine's PostgreSQL (127.0.0.1:5432,
trust auth), dropped afterwards; the test is skipped when no PostgreSQL answers."""

from __future__ import annotations

import contextlib
import uuid
from typing import Iterator

import pytest

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {error}")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f"create database {name}")
        admin.execute(f"alter database {name} set timezone = 'UTC'")
        try:
            yield name
        finally:
            admin.execute(f"drop database {name} with (force)")
