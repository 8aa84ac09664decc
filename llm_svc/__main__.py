"""Run the llm service: `python -m llm_svc`."""

import asyncio
import sys

from alice.runtime.config import ConfigError
from llm_svc.config import Config
from llm_svc.models import ModelMissingError
from llm_svc.server import serve

if __name__ == "__main__":
    try:
        asyncio.run(serve(Config.from_env()))
    except (ConfigError, ModelMissingError) as error:
        print(f"alice-llm: {error}", file=sys.stderr)
        sys.exit(2)
