"""The ``scfed`` command: one entry point, a subcommand per role.

Errors print one clear line and exit non-zero; ``--debug`` shows the traceback instead. Output
piped into a reader that stops early (``| head``) ends the command quietly, with status 141.
Subcommand modules are imported when used, so ``scfed --help`` stays fast.

Every command takes ``--debug``, ``--log-level`` and ``--log-format``, before or after its
subcommand (the last one given wins). Logs go to standard error, as text lines or, with
``--log-format json``, one JSON object a line (``JsonFormatter``); in JSON the one line of a
failed command is such an object too, so a log collector reads every line.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TextIO

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
    "attest",
    "crisis",
    "config",
    "dashboard",
    "demo",
    "bench",
)


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
#: The options every command takes that are followed by a value.
_VALUED_OPTIONS = ("--log-level", "--log-format")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("scfed")


def version() -> str:
    """The installed scfed's version, from its package metadata."""
    try:
        return importlib.metadata.version("scfed")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (scfed is not installed as a package)"


def build_parser(role: str | None = None) -> argparse.ArgumentParser:
    """The command line: only ``role``'s subcommands if it names one, else every role's.

    A command imports only its own role's module (``scfed node serve`` does not load the
    coordinator's, the auditor's or the benchmarks' modules); ``scfed --help`` lists them all.
    """
    parser = argparse.ArgumentParser(
        prog="scfed",
        description="Privacy-preserving data sharing for the semiconductor supply chain.",
    )
    parser.add_argument("--version", action="version", version=f"scfed {version()}")
    parser.set_defaults(debug=False, log_level=None, log_format="text")
    roles = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (role,) if role in ROLES else ROLES:
        importlib.import_module(f"scfed.cli.{name}").add_parser(roles)
    for command in _every_command(parser):
        _add_log_options(command)
    return parser


def _every_command(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every parser of its subcommands, each once."""
    seen: set[int] = set()
    waiting = [parser]
    while waiting:
        command = waiting.pop()
        if id(command) in seen:
            continue  # an alias names the same parser
        seen.add(id(command))
        yield command
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                waiting.extend(action.choices.values())


def _add_log_options(parser: argparse.ArgumentParser) -> None:
    """The options every command takes. An option not given leaves the value alone
    (``SUPPRESS``), so one given before the subcommand holds unless given again after it."""
    parser.allow_abbrev = False  # ``verify --log DIR`` is no abbreviation of ``--log-level``
    group = parser.add_argument_group("logging (any command, before or after it)")
    group.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS,
        help="show tracebacks and debug logs",
    )  # fmt: skip
    group.add_argument(
        "--log-level", choices=LOG_LEVELS, default=argparse.SUPPRESS,
        help="the least severe records logged (default: info, or debug with --debug)",
    )  # fmt: skip
    group.add_argument(
        "--log-format", choices=LOG_FORMATS, default=argparse.SUPPRESS,
        help="text lines (the default), or one JSON object a line",
    )  # fmt: skip


def _role(argv: Sequence[str]) -> str | None:
    """The role the arguments name: the first one that is neither an option nor the value
    of one of the options every command takes (``--log-level debug node ...``)."""
    arguments = iter(argv)
    for arg in arguments:
        if arg in _VALUED_OPTIONS:
            next(arguments, None)
        elif not arg.startswith("-"):
            return arg
    return None


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, any fields passed with ``extra=``, and ``exception`` with its traceback."""

    #: The attributes every record has; any other was passed with ``extra=``.
    STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self.STANDARD and key not in document:
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class _StandardError(logging.StreamHandler[TextIO]):
    """Writes each record to ``sys.stderr`` as it is when the record comes, so a command run
    again in the same process (the tests) writes where standard error is then."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _configure_logging(level: str | None, debug: bool, form: str) -> None:
    """Logs to standard error at ``level`` (info, or debug with ``--debug``) in ``form``;
    replaces the handler an earlier ``main`` in this process installed."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StandardError)]:
        root.removeHandler(handler)
    handler = _StandardError(sys.stderr)
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(_TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(getattr(logging, (level or ("debug" if debug else "info")).upper()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the process exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_role(arguments)).parse_args(arguments)
    _configure_logging(args.log_level, args.debug, args.log_format)
    log.debug("scfed %s: %s", version(), " ".join(arguments))
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # here, so that a closed pipe is seen here and not at exit
    except BrokenPipeError:
        return _closed_pipe()
    except ScfedError as exc:
        if args.debug:
            raise
        if args.log_format == "json":
            log.error("scfed: error: %s", exc)  # at any level: the one line of a failure
        else:
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
