"""Run the cache service: `python -m cache_svc`."""

import asyncio

from cache_svc.config import Config
from cache_svc.server import serve

if __name__ == "__main__":
    asyncio.run(serve(Config.from_env()))
