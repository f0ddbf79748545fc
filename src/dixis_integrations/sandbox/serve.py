"""Serve any emulator (or plain ``httpx`` handler) over real HTTP on 127.0.0.1.

So that any client, a vendor's own official SDK included, can talk to a sandbox. The
server runs in a background thread; injected resets close the socket without an answer
and injected timeouts hold the request open past the client's patience.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

__all__ = ["ServedSandbox", "serve", "serve_in_thread"]

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class ServedSandbox:
    """A running server: where it listens, and how to stop it."""

    base_url: str
    host: str
    port: int
    server: ThreadingHTTPServer
    thread: threading.Thread

    def stop(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _make_request_handler(
    handler: Handler, base_url: str, hold_seconds: float
) -> type[BaseHTTPRequestHandler]:
    class _RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out apart: no 40 ms stalls

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet: tests and the demo read their own output

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                # The client went away before its body arrived (a worker killed while
                # sending): an HTTP server never sees such a request, so neither does the
                # emulator, which would otherwise answer, and remember, a cut-off body.
                self.close_connection = True
                return
            headers = [(k, v) for k, v in self.headers.items() if k.lower() != "host"]
            headers.append(("host", self.headers.get("host") or base_url.split("//", 1)[1]))
            request = httpx.Request(
                self.command, base_url + self.path, headers=headers, content=body
            )
            try:
                response = handler(request)
            except httpx.ConnectError:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)
                return
            except httpx.TimeoutException:
                time.sleep(hold_seconds)
                self.close_connection = True
                return
            content = response.read()
            self.send_response(response.status_code)
            for key, value in response.headers.multi_items():
                if key.lower() in {"content-length", "transfer-encoding", "connection"}:
                    continue
                self.send_header(key, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return _RequestHandler


def serve_in_thread(
    handler: Handler, *, host: str = "127.0.0.1", port: int = 0, hold_seconds: float = 2.0
) -> ServedSandbox:
    """Start serving ``handler`` in a daemon thread; ``port=0`` picks a free port."""
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise ValueError("sandboxes only listen on the loopback interface")
    server = ThreadingHTTPServer((host, port), BaseHTTPRequestHandler)
    server.daemon_threads = True
    real_port = server.server_address[1]
    base_url = f"http://{host}:{real_port}"
    server.RequestHandlerClass = _make_request_handler(handler, base_url, hold_seconds)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # stop() waits up to one poll
        name=f"sandbox:{real_port}",
        daemon=True,
    )
    thread.start()
    return ServedSandbox(base_url, host, int(real_port), server, thread)


@contextlib.contextmanager
def serve(
    handler: Handler, *, host: str = "127.0.0.1", port: int = 0, hold_seconds: float = 2.0
) -> Iterator[ServedSandbox]:
    """Context manager around :func:`serve_in_thread` that always stops the server."""
    served = serve_in_thread(handler, host=host, port=port, hold_seconds=hold_seconds)
    try:
        yield served
    finally:
        served.stop()
