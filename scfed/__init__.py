"""scfed: secure aggregation with differential privacy for supply-chain figures.

The package is the pure core shared by node, coordinator and auditor (no files, sockets,
SQLite, clocks or global randomness: they come in as arguments, from the ``edge`` package and
the daemons) plus the ``scfed`` command line in ``scfed.cli``. Only ``scfed.cli`` (and
``python -m scfed``), the command-line edge, imports ``edge``, ``node``, ``coordinator``,
``auditor``, ``governance`` and ``tools``; ``tests/unit/test_layers.py`` walks the imports.
"""

__version__ = "0.1.0"
