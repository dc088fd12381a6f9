"""Running the service: logs, request ids, metrics, health and readiness."""
