"""The ``scfed`` command: one entry point, a subcommand per role.

Errors print one clear line and exit non-zero; ``--debug`` shows the traceback instead. Output
piped into a reader that stops early (``| head``) ends the command quietly, with status 141.
Subcommand modules are imported when used, so ``scfed --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from scfed.errors import ScfedError

# NumPy's OpenBLAS starts a thread per core when it loads, which spins for about 0.1 CPU
# second; scfed does no BLAS work that threads would speed up, and many node processes
# starting on a small machine pay for it in their start-up. A user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


#: The roles, each a module of this package with an ``add_parser``, in the order of ``--help``.
ROLES = (
    "federation",
    "coordinator",
    "node",
    "operator",
    "privacy",
    "audit",
    "dashboard",
    "demo",
    "bench",
)


def build_parser(role: str | None = None) -> argparse.ArgumentParser:
    """The command line: only ``role``'s subcommands if it names one, else every role's.

    A command imports only its own role's module (``scfed node serve`` does not load the
    coordinator's, the auditor's or the benchmarks' modules); ``scfed --help`` lists them all.
    """
    parser = argparse.ArgumentParser(
        prog="scfed",
        description="Privacy-preserving data sharing for the semiconductor supply chain.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    roles = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (role,) if role in ROLES else ROLES:
        importlib.import_module(f"scfed.cli.{name}").add_parser(roles)
    return parser


def _role(argv: Sequence[str]) -> str | None:
    """The role the arguments name: the first one that is not an option (only ``--debug``,
    which takes no value, may come before it)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the process exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_role(arguments)).parse_args(arguments)
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
