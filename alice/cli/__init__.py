"""The `alice` command-line interface."""
