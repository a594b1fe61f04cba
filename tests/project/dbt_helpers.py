"""copy_project and dbt from tests/conftest.py, importable by test modules.

Every conftest.py is module "conftest" to pytest (tests/ is not a package), so
`from conftest import ...` could find another folder's; this loads the shared one by path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("shared_test_helpers", Path(__file__).resolve().parents[1] / "conftest.py")
assert _spec is not None and _spec.loader is not None
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)

copy_project = _shared.copy_project
dbt = _shared.dbt
