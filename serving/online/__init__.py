"""The online store: Redis (one node or a cluster) holding one snapshot per feature view.

keys (the layout, defined once) -> connection (which servers) -> protocol (bulk
commands) -> versions (safe with overlapping writers) -> export and read."""
