"""urne: citizen votes and consultations, verifiable end to end."""

__version__ = "0.1.0"
