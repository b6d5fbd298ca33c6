"""What every process needs to run: settings, JSON logging, metrics, domain errors."""
