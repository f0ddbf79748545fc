"""Serving an emulator over real HTTP on 127.0.0.1: answers, resets, timeouts, loopback only."""

from __future__ import annotations

from collections import deque

import httpx
import pytest

from dixis_integrations.sandbox.kit import (
    Emulator,
    Fault,
    FaultPlan,
    json_response,
    read_json,
    route,
)
from dixis_integrations.sandbox.serve import serve, serve_in_thread


class Echo(Emulator):
    name = "echo"

    @route("POST", r"/echo")
    def echo(self, request: httpx.Request) -> httpx.Response:
        return json_response(
            200,
            {"body": read_json(request), "key": request.headers.get("idempotency-key")},
            {"x-request-id": "rq-1"},
        )

    @route("GET", r"/where")
    def where(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"url": str(request.url), "base": self.base_url})


def test_a_served_emulator_answers_real_http_requests() -> None:
    echo = Echo()
    with serve(echo.handle) as served:
        echo.bind(served.base_url)
        assert served.base_url == f"http://127.0.0.1:{served.port}"
        with httpx.Client(base_url=served.base_url) as client:
            response = client.post(
                "/echo", json={"name": "Ηλίας"}, headers={"Idempotency-Key": "k-1"}
            )
            where = client.get("/where?page=2").json()
            head = client.head("/where")
    assert response.json() == {"body": {"name": "Ηλίας"}, "key": "k-1"}
    assert response.headers["x-request-id"] == "rq-1"
    assert where == {"url": f"{served.base_url}/where?page=2", "base": served.base_url}
    assert head.status_code == 404  # no HEAD route: the kit's 404, and no body
    assert head.content == b""


def test_an_injected_reset_closes_the_connection() -> None:
    echo = Echo(faults=FaultPlan(script=deque([Fault.RESET])))
    with serve(echo.handle) as served, httpx.Client(base_url=served.base_url) as client:
        with pytest.raises(httpx.TransportError):
            client.post("/echo", json={})
        assert client.post("/echo", json={}).status_code == 200


def test_an_injected_timeout_outlasts_the_client() -> None:
    echo = Echo(faults=FaultPlan(script=deque([Fault.TIMEOUT])))
    with (
        serve(echo.handle, hold_seconds=0.5) as served,
        httpx.Client(base_url=served.base_url, timeout=0.1) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.post("/echo", json={})


def test_only_the_loopback_interface_is_served() -> None:
    with pytest.raises(ValueError, match="loopback"):
        serve_in_thread(Echo().handle, host="0.0.0.0")  # noqa: S104


def test_stop_releases_the_port() -> None:
    served = serve_in_thread(Echo().handle)
    served.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(served.base_url + "/where", timeout=1)


def test_a_request_whose_body_never_arrives_is_not_answered() -> None:
    import socket

    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.read())
        return json_response(200, {"ok": True})

    with serve(handler) as served:
        with socket.create_connection(("127.0.0.1", served.port)) as cut:
            cut.sendall(  # a client killed while sending: 14 of the 40 bytes promised
                b"POST /echo HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                b'content-length: 40\r\n\r\n{"amount": 12.40, '
            )
            cut.shutdown(socket.SHUT_WR)
            assert cut.recv(1024) == b""  # closed without an answer
        with httpx.Client(base_url=served.base_url) as client:
            assert client.post("/echo", json={"amount": 1}).status_code == 200
    assert seen == [b'{"amount":1}']
