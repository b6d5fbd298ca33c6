"""The HTTP gateway: the stable /v1 API in front of the services (FastAPI)."""
