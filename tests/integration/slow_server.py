"""A tiny service process for the shutdown test: NluService.Parse sleeps for SLOW_S before answering."""

from __future__ import annotations

import asyncio
import os
import sys

from fakes import FakeNlu, settings

from alice.nlu.v1 import nlu_service_pb2_grpc
from alice.runtime.config import TelemetrySettings
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import setup_telemetry


async def main() -> None:
    telemetry = setup_telemetry(TelemetrySettings("slow", None, 1.0, False, False))
    servicer = FakeNlu()
    servicer.delay_s = float(os.environ["SLOW_S"])
    host = ServiceHost(settings("slow", grace_s=float(os.environ["GRACE_S"]), drain_delay_s=0.5), telemetry,
                       ["alice.nlu.v1.NluService"])
    nlu_service_pb2_grpc.add_NluServiceServicer_to_server(servicer, host.server)
    port = await host.start()
    await host.set_serving()
    print(port, flush=True)
    await host.run_until_stopped()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
