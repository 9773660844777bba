"""The operator's daemon: gRPC server over mutual TLS, round driver, registry and results.

Servicers are thin: they decode, hand the message to the pure round machine in
``scfed.secagg``, encode the answer, and map errors to gRPC status codes in ``_status``.
"""
