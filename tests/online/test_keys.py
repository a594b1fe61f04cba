"""The key layout: row keys are tagged by the entity key, control keys by the prefix."""

from __future__ import annotations

import random

import pytest
from redis.crc import key_slot

from serving.encoding import key_part
from serving.errors import OnlineStoreError
from serving.online.keys import KeySpace, slot, slots


def test_the_slot_of_an_entity_key_is_the_slot_redis_gives_its_row_keys_in_every_version() -> None:
    rng = random.Random(5)
    keys = [key_part(rng.randrange(-(2**63), 2**63)) for _ in range(5000)]
    keys += [key_part("".join(rng.choice("ab}{") for _ in range(rng.randrange(8)))) for _ in range(2000)]
    keys += [key_part(7) + key_part("x}y"), key_part(0x7D)]  # a '}' inside the key ends the tag early
    space = KeySpace("fs")
    for version in (1, 12345):
        assert [key_slot(space.row("user_features", version, key)) for key in keys] == slots(keys) == [slot(key) for key in keys]


def test_control_keys_share_one_slot() -> None:
    space = KeySpace("fs")
    names = [space.current, space.counter, space.versions, space.meta("v", 3), space.index("v", 3)]
    assert len({key_slot(name.encode()) for name in names}) == 1


@pytest.mark.parametrize("prefix", ["", "a{b", "a}b", "a:b", "a b"])
def test_a_prefix_that_would_break_the_layout_is_refused(prefix: str) -> None:
    with pytest.raises(OnlineStoreError, match="is not valid"):
        KeySpace(prefix)
