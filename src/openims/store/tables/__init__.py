"""Tables of the resource families beyond the core; each module adds its tables to `schema.metadata`."""
