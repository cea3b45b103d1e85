"""Serve an ASGI app with uvicorn in a thread of `postdesk serve`, on a socket bound here (so a
busy port is one ConfigError line at start, and port 0 gives a free port for tests).

X-Forwarded-For/-Proto are believed only from `web.trusted_proxies` (uvicorn's proxy_headers
with forwarded_allow_ips); with none configured they are ignored. No access log: a status
page's path is its key and must not end up in a log."""

from __future__ import annotations

import socket
import threading

import uvicorn
from starlette.types import ASGIApp

from gateway import logs
from gateway.errors import ConfigError


class WebServer:
    """One listener; `port` is the bound port after `start()`."""

    def __init__(self, name: str, app: ASGIApp, host: str, port: int,
                 trusted_proxies: list[str] | None = None) -> None:
        self.name = name
        self.host = host
        self.port = port
        trusted = list(trusted_proxies or [])
        self.config = uvicorn.Config(
            app, log_config=None, access_log=False, log_level="warning", lifespan="off",
            proxy_headers=bool(trusted), forwarded_allow_ips=trusted or [],
            server_header=False, date_header=True, timeout_keep_alive=5,
        )
        self.server = uvicorn.Server(self.config)
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"web.{self.name}: cannot listen on {self.host}:{self.port}: "
                              f"{exc.strerror or exc}") from exc
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                        name=f"web-{self.name}", daemon=True)
        self._thread.start()
        logs.event("web.listening", listener=self.name, host=self.host, port=self.port)

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._thread = self._socket = None
