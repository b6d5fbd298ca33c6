"""The message kernel (``ServiceCore``) and the transports that carry its envelopes:
the embedded bus (one process), nameko over RabbitMQ, and the gateway's asyncio RPC client."""
