"""Slot-aware answer cache service on Redis 8."""
