"""The Redis key layout of the online store, defined once.

Two kinds of keys, laid out so that one node and a Redis Cluster share every command:

- Control keys (pointers, the version registry, each version's metadata and key index)
  carry the hash tag `{<prefix>}`, so they live in one slot: the scripts that switch
  snapshots and claim versions for deletion touch several of them atomically, which a
  cluster allows only within one slot.
- Row keys `<prefix>:<view>:<version>:{<entity key>}` are tagged by the entity key
  bytes: a view's rows spread over all slots, and every version of one entity's row
  sits in the same slot, so an incremental export can COPY an unchanged row from the
  old version to the new one on the node that holds both.

- The serving log `<prefix>:log:{<prefix>:log}` (a stream, serving.monitoring.serving_log)
  has a hash tag of its own: every read may append to it, so in a cluster it should not
  add that load to the node that holds the control keys, and it is one key, so any slot
  will do.

The Lua read script builds row and metadata names from the parts returned here, so
the layout is not restated there.
"""

from __future__ import annotations

from binascii import crc_hqx
from dataclasses import dataclass
from typing import Sequence

from serving.errors import OnlineStoreError

HASH_SLOTS = 16384
ROW_SEP = b":{"
ROW_TAIL = b"}"


@dataclass(frozen=True)
class KeySpace:
    prefix: str

    def __post_init__(self) -> None:
        if not self.prefix or any(char in self.prefix for char in "{}: \t\r\n"):
            raise OnlineStoreError(
                f"Redis key prefix {self.prefix!r} is not valid: use letters, digits, '-', '_' or '.' (no braces, colons or spaces)"
            )

    @property
    def _control(self) -> str:
        return f"{self.prefix}:{{{self.prefix}}}"

    @property
    def current(self) -> str:
        """Hash: view name -> the version readers resolve."""
        return f"{self._control}:current"

    @property
    def counter(self) -> str:
        """INCR: every export's version number is new."""
        return f"{self._control}:counter"

    @property
    def versions(self) -> str:
        """Hash: "<view>:<version>" -> its state (see serving.online.versions)."""
        return f"{self._control}:versions"

    @property
    def meta_head(self) -> str:
        """A version's metadata key is meta_head + "<view>:<version>"."""
        return f"{self._control}:meta:"

    def meta(self, view: str, version: int | str) -> str:
        return f"{self.meta_head}{view}:{version}"

    def index(self, view: str, version: int | str) -> str:
        """List of the entity keys a version holds, so it is deleted without a SCAN."""
        return f"{self._control}:index:{view}:{version}"

    @property
    def serving_log_tag(self) -> str:
        return f"{self.prefix}:log"

    @property
    def serving_log(self) -> str:
        """Stream: one entry per logged online read (serving.monitoring.serving_log)."""
        return f"{self.serving_log_tag}:{{{self.serving_log_tag}}}"

    def row_head(self, view: str) -> bytes:
        """A row key is row_head + version + ROW_SEP + entity key + ROW_TAIL."""
        return f"{self.prefix}:{view}:".encode()

    def rows(self, view: str, version: int | str) -> bytes:
        """Everything of a row key before the entity key bytes."""
        return self.row_head(view) + str(version).encode() + ROW_SEP

    def row(self, view: str, version: int | str, key: bytes) -> bytes:
        return self.rows(view, version) + key + ROW_TAIL


def field(view: str, version: int | str) -> str:
    """The version registry's field for one version of one view."""
    return f"{view}:{version}"


def parse_field(name: bytes | str) -> tuple[str, int]:
    text = name.decode() if isinstance(name, bytes) else name
    view, _, version = text.rpartition(":")
    return view, int(version)


def slot(key: bytes) -> int:
    """The cluster hash slot of every row of this entity key (Redis's hash-tag rule:
    the tag ends at the first '}'; entity keys start with a type byte, so it is never empty)."""
    end = key.find(b"}")
    return crc_hqx(key if end < 0 else key[:end], 0) % HASH_SLOTS


def slots(keys: Sequence[bytes]) -> list[int]:
    """`slot` of many keys, without a Python call per key (reads and exports do this per row)."""
    mask, crc = HASH_SLOTS - 1, crc_hqx
    return [crc(key.partition(b"}")[0], 0) & mask for key in keys]
