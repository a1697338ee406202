"""SQL over the trail: read-only queries over one account's events as a table named `events` (see docs/query.md)."""
