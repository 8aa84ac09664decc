"""The local trace store: an OTLP receiver that keeps spans in SQLite, with a CLI and a web waterfall."""
