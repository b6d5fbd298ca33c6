"""What every process shares: settings, logging, metrics, errors, keys, the service kernel."""
