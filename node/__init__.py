"""The firm's daemon: dials the coordinator, takes part in rounds, keeps its own state.

A node never listens. It keeps one mutual-TLS connection to the coordinator, receives tasks
on it, feeds them to the pure round machine in ``scfed.secagg`` and submits the answers.
"""
