"""The demo and the benchmarks: programs that run scfed, not part of it.

``tools.demo`` runs a whole federation on this machine (its firms in ``tools.demo_data``,
its child processes in ``tools.processes``, also used by the integration tests). The
``bench_*`` modules time the secure aggregation, the protocol log, the audit and a node's
data work, and measure how often the published picture is right on a synthetic federation
(``tools.picture_data``). ``scfed demo`` and ``scfed bench`` call them.
``tools.round_vectors`` writes the round known-answer vectors kept in tests/vectors/round.
"""
