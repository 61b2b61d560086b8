"""Request and correlation ids, Prometheus metrics and error reporting (docs/operations.md)."""
