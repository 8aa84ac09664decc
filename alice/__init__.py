"""Alice mesh: generated contracts, the shared runtime and the CLI."""
