"""How the services are run: in one process (embedded) or over RabbitMQ (distributed)."""

SERVICES = ("identity", "proposal", "vote", "tally")
