"""The I/O the parties share: files, SQLite, the state lock and gRPC channels. Edge code.

The pure core in ``scfed`` takes bytes, keys, randomness and time as arguments; this package
is where they come from for the daemons, the auditor, governance and the command line.
``edge.files`` reads files (bounded, private keys refused when others may read them) and
writes them atomically and durably, the one copy of those helpers; ``edge.config`` loads the
configuration files and the signed files they name, parsed by ``scfed.config``;
``edge.storage`` is SQLite as the daemons use it, with the privacy ledger's table;
``edge.lock`` keeps one daemon per state folder; ``edge.transport`` opens mutual-TLS
channels and checks a daemon's TLS files; ``edge.logdir`` writes and reads the exported
protocol log. Nothing here imports the command line (``scfed.cli``), the daemons or tools.
"""
