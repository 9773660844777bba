"""Serving the dashboard with waitress (edge code: opens a listening socket).

``bind`` opens the socket (port 0 picks a free one) so the caller can say where it is
before ``run`` serves until interrupted. Only a loopback address is served unless the
caller says the figures may be seen from elsewhere (``scfed dashboard --public``).
"""

from __future__ import annotations

import ipaddress

from flask import Flask
from waitress.server import TcpWSGIServer, create_server

from scfed.errors import ConfigError

#: Requests served at once: the pages are built in well under a second.
THREADS = 4


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, public: bool) -> None:
    """Raise unless ``host`` is loopback or the caller allowed a public address."""
    if not public and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve the dashboard on {host}: its figures are for members only;"
            " use a loopback address, or add --public to serve it on the network"
        )


def bind(app: Flask, host: str, port: int, *, public: bool = False) -> TcpWSGIServer:
    """A waitress server for ``app`` listening on ``host:port``, not yet serving."""
    check_host(host, public)
    try:
        listen = "127.0.0.1" if host == "localhost" else host  # not ::1 as well: one socket
        server = create_server(app, host=listen, port=port, threads=THREADS, ident="scfed")
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if not isinstance(server, TcpWSGIServer):  # a name of several addresses: several sockets
        server.close()
        raise ConfigError(f"{host} names more than one address: give one address")
    return server


def url(server: TcpWSGIServer) -> str:
    """Where ``server`` listens, as a URL."""
    host, port = server.getsockname()
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"
