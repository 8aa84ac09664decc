"""Run the router service: `python -m router_svc`."""

import asyncio

from router_svc.config import Config
from router_svc.server import serve

if __name__ == "__main__":
    asyncio.run(serve(Config.from_env()))
