"""The registry's rules that both the online and the offline path apply."""

from __future__ import annotations

import pytest

from serving.errors import EntityKeyError
from serving.registry import Feature, FeatureView, Registry


def view(name: str, key_type: str | None) -> FeatureView:
    return FeatureView(
        name, name, ("user_id",), "event_timestamp", None, None, None, True, None, (), "", (Feature("x", "double", ""),), {"user_id": key_type}
    )


def test_views_sharing_a_key_name_and_type_give_that_type() -> None:
    assert Registry.key_types([view("a", "bigint"), view("b", "integer")]) == {"user_id": int}


def test_views_sharing_a_key_name_but_not_its_type_are_refused_naming_both() -> None:
    with pytest.raises(EntityKeyError, match=r"entity key user_id is bigint in feature view 'a' but varchar in 'b'"):
        Registry.key_types([view("a", "bigint"), view("b", "varchar")])
