"""Run the nlu service: `python -m nlu_svc`."""

import asyncio

from nlu_svc.config import Config
from nlu_svc.server import serve

if __name__ == "__main__":
    asyncio.run(serve(Config.from_env()))
