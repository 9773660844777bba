"""``scfed demo``: a whole federation on this machine, one catalogue round, checked; with
``--crisis``, crisis mode and attestations after it (``tools.demo_crisis``).

The demo itself is ``tools.demo``; this module parses the arguments and picks its folder,
which the demo keeps and names at its end, with the command that opens the dashboard on it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from tools.demo_data import FIRMS

    parser = roles.add_parser("demo", help="run a whole federation on this machine")
    parser.add_argument("--nodes", type=int, default=len(FIRMS), help="firms to start (3..12)")
    parser.add_argument("--dropouts", type=int, default=0, help="nodes to kill mid-round")
    parser.add_argument(
        "--dir", type=Path,
        help="an empty or new federation folder (default: a new scfed-demo-* folder in the "
        "system's temporary folder); the demo keeps it, to look at afterwards",
    )  # fmt: skip
    parser.add_argument(
        "--setup-only", action="store_true",
        help="only make the federation in --dir (firms, data, catalogue), start nothing",
    )  # fmt: skip
    parser.add_argument(
        "--crisis", action="store_true",
        help="then the Kyushu squeeze becomes a crisis: needs and offers matched with double "
        "opt-in, their aggregate published, and a fab's stock attested to two banks",
    )  # fmt: skip
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from tools.demo import run_demo

    directory = args.dir or Path(tempfile.mkdtemp(prefix="scfed-demo-"))
    if args.setup_only:
        from tools.demo import setup_only

        return setup_only(directory, args.nodes)
    if args.crisis:
        from tools.demo_crisis import check_crisis_args, run_crisis_demo

        check_crisis_args(args.nodes, args.dropouts)
        return run_crisis_demo(directory)
    return run_demo(directory, args.nodes, args.dropouts)
