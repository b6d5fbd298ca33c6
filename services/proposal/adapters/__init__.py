"""Storage and I/O adapters of this service (SQLite for embedded, Cassandra for distributed)."""
