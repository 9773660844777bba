"""The ``scfed`` command: one entry point, a subcommand per role.

Errors print one clear line and exit non-zero; ``--debug`` shows the traceback instead. Output
piped into a reader that stops early (``| head``) ends the command quietly, with status 141.
Subcommand modules are imported when used, so ``scfed --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from scfed.errors import ScfedError


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every subcommand registered."""
    from scfed.cli import (
        audit,
        bench,
        coordinator,
        demo,
        federation,
        node,
        operator,
        privacy,
    )

    parser = argparse.ArgumentParser(
        prog="scfed",
        description="Privacy-preserving data sharing for the semiconductor supply chain.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    roles = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (federation, coordinator, node, operator, privacy, audit, demo, bench):
        module.add_parser(roles)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # here, so that a closed pipe is seen here and not at exit
    except BrokenPipeError:
        return _closed_pipe()
    except ScfedError as exc:
        if args.debug:
            raise
        print(f"scfed: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def _closed_pipe() -> int:
    """The reader of our output went away (``scfed ... | head -1``): stop quietly, as a
    command killed by SIGPIPE would, with nothing left to flush into the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE
