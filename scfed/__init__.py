"""scfed: secure aggregation with differential privacy for supply-chain figures.

The package is the pure core shared by node, coordinator and auditor (no sockets, clocks or
global randomness) plus the ``scfed`` command line in ``scfed.cli``. Only ``scfed.cli``, the
edge, imports ``node``, ``coordinator``, ``auditor``, ``governance`` and ``tools``.
"""

__version__ = "0.1.0"
