"""The four urne services; each is a pure core (domain, handlers, ports) with adapters around it."""
