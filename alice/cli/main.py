"""Entry point of the `alice` command: one sub-command per module in COMMANDS and EVALUATIONS."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from alice.local.termination import Terminated, unwind_on_sigterm

COMMANDS = ("alice.cli.up", "alice.cli.ask", "alice.cli.status", "alice.cli.bench", "alice.cli.trace")
"""Modules with `register(subparsers)` adding top-level sub-commands."""
EVALUATIONS: tuple[str, ...] = (
    "alice.cli.eval_nlu",
    "alice.cli.eval_cache",
    "alice.cli.eval_e2e",
    "alice.cli.eval_adversarial",
)
"""Modules with `register(subparsers)` adding `alice eval <name>` sub-commands."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alice", description="Alice mesh: Swedish assistant over gRPC")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(module).register(commands)
    evaluate = commands.add_parser("eval", help="evaluate against a data file (spec/intents.md)")
    evaluations = evaluate.add_subparsers(dest="evaluation", required=True, metavar="KIND")
    for module in EVALUATIONS:
        importlib.import_module(module).register(evaluations)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["trace"]:
        # Fast path: reading the trace store needs none of the gRPC and mesh imports the other commands do.
        from alice.cli.trace import main as trace_main

        return trace_main(argv[1:])
    args = build_parser().parse_args(argv)
    unwind_on_sigterm()
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 128 + signal.SIGTERM


if __name__ == "__main__":
    sys.exit(main())
