"""Storage helpers shared by the services' adapters: SQLite (embedded), Cassandra
(distributed) and numbered schema migrations. Only adapters import this package (D2)."""
