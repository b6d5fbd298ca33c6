"""Benchmarks. Each prints one JSON document; compare ratios measured in one run."""
