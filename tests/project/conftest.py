"""Tests of the built dbt project; the brute-force reference lives with the macro tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "macros"))
