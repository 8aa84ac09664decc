"""`alice up` (run the local mesh until Ctrl-C) and `alice demo` (a short Swedish conversation)."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from typing import Any

from alice.cli.ask import ask_once, print_reply
from alice.local.mesh import SERVICES, LocalMesh

STATE_FILE = Path(".alice") / "mesh.json"
TRACE_DB = Path(".alice") / "traces.db"
"""Where `alice up` records its addresses, so `alice ask` finds the running mesh."""

DEMO = (
    "Hej Alice!",
    "Vad är klockan?",
    "Hur blir vädret i Gbg på fredag?",
    "Boka möte med Anna imorgon kl 14",
    "Vad har jag för möten imorgon?",
    "Sätt en timer på tre kvart",
    "Vad är huvudstaden i Norge?",
    "Hur blir vädret i Göteborg på fredag?",
)


def register(commands: Any) -> None:
    up = commands.add_parser("up", help="start Redis and the four services locally until Ctrl-C")
    up.add_argument("--logs", type=Path, default=Path(".alice") / "logs", help="folder for service logs")
    up.add_argument("--services", default=",".join(SERVICES),
                    help=f"comma-separated subset to start (default: all: {','.join(SERVICES)})")
    up.add_argument("--live-weather", action="store_true",
                    help="use the real Open-Meteo API instead of replayed recordings (needs internet)")
    up.set_defaults(run=run_up)
    demo = commands.add_parser("demo", help="start the local mesh, hold a short Swedish conversation, stop")
    demo.add_argument("--target", help="HOST:PORT of a running router instead of a local mesh")
    demo.add_argument("--logs", type=Path, default=Path(".alice") / "logs", help="folder for service logs")
    demo.add_argument("--live-weather", action="store_true",
                      help="use the real Open-Meteo API instead of replayed recordings (needs internet)")
    demo.set_defaults(run=run_demo)


def run_up(args: argparse.Namespace) -> int:
    args.logs.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    wanted = [name.strip() for name in args.services.split(",") if name.strip()]
    if unknown := set(wanted) - set(SERVICES):
        print(f"unknown services: {', '.join(sorted(unknown))}")
        return 2
    with LocalMesh(services=wanted, log_dir=args.logs, replay_weather=not args.live_weather,
                   trace_db=TRACE_DB) as mesh:
        addresses = {name: mesh.address(name) for name in mesh.processes} | {"redis": mesh.redis_url}
        if mesh.trace_store is not None and mesh.trace_store.web_url:
            addresses["traces"] = mesh.trace_store.web_url
        addresses |= {f"{name}-metrics": url for name, entry in mesh.processes.items()
                      if (url := entry.metrics_url) is not None}
        STATE_FILE.parent.mkdir(exist_ok=True)
        STATE_FILE.write_text(json.dumps(addresses, indent=2))
        print("\nAlice mesh is up:")
        width = max(len(name) for name in addresses)
        for name, address in addresses.items():
            print(f"  {name:<{width}} {address}")
        print(f"  {'logs':<{width}} {args.logs}/")
        if mesh.credentials is not None:
            print(f"  auth     API key of user {mesh.credentials.user_id!r} in {mesh.credentials.key_file} (0600; "
                  f"stored hashed in {mesh.credentials.keys_file.name}); `alice ask` sends it")
        print('\nTry: .venv/bin/alice ask "Vad är klockan?"   (Ctrl-C stops everything)', flush=True)
        stop.wait()
        print("\nstopping ...", flush=True)
    STATE_FILE.unlink(missing_ok=True)
    print("stopped")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    if args.target:
        return _converse(args.target)
    args.logs.mkdir(parents=True, exist_ok=True)
    with LocalMesh(services=SERVICES, log_dir=args.logs, replay_weather=not args.live_weather,
                   trace_db=TRACE_DB) as mesh:
        return _converse(mesh.address("router"))


def _converse(target: str) -> int:
    print(f"\nSwedish demo against the router at {target}\n")
    for text in DEMO:
        print(f"> {text}")
        print_reply(ask_once(target, text, user_id="demo"), indent="  ")
        print()
    return 0
