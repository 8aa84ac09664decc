"""Local mesh: a real Redis and the four services as processes on loopback."""
