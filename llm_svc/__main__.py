"""Run the llm service: `python -m llm_svc`."""

import asyncio

from llm_svc.config import Config
from llm_svc.server import serve

if __name__ == "__main__":
    asyncio.run(serve(Config.from_env()))
