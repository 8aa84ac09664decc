"""`python -m alice.tracestore`: the OTLP receiver (gRPC 4317, HTTP 4318) and the web view (16686) on loopback."""

from __future__ import annotations

import asyncio
import os
import sys

from alice.runtime.config import ConfigError
from alice.runtime.telemetry import setup_logging
from alice.tracestore.config import TraceStoreConfig
from alice.tracestore.server import serve


def main() -> int:
    try:
        config = TraceStoreConfig.from_env()
    except ConfigError as error:
        print(f"trace store: {error}", file=sys.stderr)
        return 2
    setup_logging("alice-tracestore", config.log_level, config.log_format)
    if config.nice:
        os.nice(config.nice)  # the process only: `start(config)` in a test process leaves that one alone
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
