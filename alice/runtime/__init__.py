"""Shared runtime of the four services: config, server bootstrap, channels, telemetry, breaker."""
