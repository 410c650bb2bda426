"""Small HTTP servers on 127.0.0.1 that answer as Verda and Vast.ai do.

They follow /work/shared/providers-api.md: Verda's OAuth2 client-credential
token (JSON or form body), ``/instance-types`` with prices as strings or
numbers and ``/instance-availability``; Vast.ai's ``POST /api/v0/bundles/``
offer search with ``{field: {op: value}}`` filters, bearer or ``?api_key=``
auth, 401 ``auth_error`` bodies and plain-text 429s without Retry-After.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERDA_TYPES: list[dict[str, Any]] = [
    {
        "instance_type": "1L40S.20V",
        "cpu": {"description": "20 CPU", "number_of_cores": 20},
        "gpu": {"description": "1x L40S 48GB", "number_of_gpus": 1},
        "gpu_memory": {"description": "48GB", "size_in_gigabytes": 48},
        "memory": {"description": "60GB RAM", "size_in_gigabytes": 60},
        "price_per_hour": "1.10",
        "spot_price": "0.39",
        "dynamic_price": "0.91",
        "currency": "usd",
        "supported_os": ["ubuntu-24.04-cuda-12.8-open-docker"],
    },
    {
        "instance_type": "8H100.80S.176V",
        "cpu": {"number_of_cores": 176},
        "gpu": {"description": "8x H100 SXM5 80GB", "number_of_gpus": 8},
        "gpu_memory": {"size_in_gigabytes": 640},
        "memory": {"size_in_gigabytes": 1480},
        "price_per_hour": 23.92,
        "spot_price": 9.6,
        "currency": "usd",
    },
    {
        "instance_type": "CPU.4V.16G",
        "cpu": {"number_of_cores": 4},
        "gpu": {"description": "", "number_of_gpus": 0},
        "gpu_memory": {"size_in_gigabytes": 0},
        "memory": {"size_in_gigabytes": 16},
        "price_per_hour": "0.0279",
        "spot_price": "0.0112",
        "currency": "usd",
    },
]
VERDA_AVAILABILITY = [
    {"location_code": "FIN-01", "availabilities": ["1L40S.20V", "CPU.4V.16G"]},
    {"location_code": "ICE-01", "availabilities": ["1L40S.20V"]},
]

VAST_OFFERS: list[dict[str, Any]] = [
    {
        "id": 901,
        "machine_id": 11,
        "gpu_name": "RTX 4090",
        "num_gpus": 2,
        "gpu_ram": 24564,
        "cpu_cores": 32,
        "cpu_ram": 128000,
        "dph_total": 0.82,
        "min_bid": 0.51,
        "reliability": 0.99,
        "geolocation": "Texas, US",
        "verified": True,
        "external": False,
        "rentable": True,
        "rented": False,
    },
    {
        "id": 902,
        "machine_id": 12,
        "gpu_name": "RTX 4090",
        "num_gpus": 1,
        "gpu_ram": 24564,
        "cpu_cores": 16,
        "cpu_ram": 64000,
        "dph_total": 0.41,
        "min_bid": 0.25,
        "reliability": 0.97,
        "geolocation": "Quebec, CA",
        "verified": True,
        "external": False,
        "rentable": True,
        "rented": False,
    },
    {
        "id": 903,
        "machine_id": 13,
        "gpu_name": "H100 SXM",
        "num_gpus": 1,
        "gpu_ram": 81559,
        "cpu_cores": 24,
        "cpu_ram": 256000,
        "dph_total": 2.2,
        "min_bid": 1.4,
        "reliability": 0.90,
        "geolocation": "California, US",
        "verified": True,
        "external": False,
        "rentable": True,
        "rented": False,
    },
]

_OPS = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "gte": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "lte": lambda a, b: a is not None and a <= b,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}
_RESERVED = {"order", "type", "limit", "allocated_storage"}


def _matches(offer: dict[str, Any], field: str, test: dict[str, Any]) -> bool:
    value = offer.get(field)
    for op, wanted in test.items():
        if field == "geolocation" and op in ("in", "eq"):
            # Vast matches country codes against "Region, CC".
            codes = wanted if op == "in" else [wanted]
            if str(value).rsplit(", ", 1)[-1] not in codes:
                return False
        elif not _OPS[op](value, wanted):
            return False
    return True


class FakeAPI:
    """Shared state of one fake: requests seen and scripted failures."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.fail_next: list[tuple[int, str]] = []
        self.url = ""


def _handler(api: FakeAPI, route: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            ctype = self.headers.get("Content-Type", "")
            body: Any = None
            if raw and "json" in ctype:
                body = json.loads(raw)
            elif raw:
                body = dict(urllib.parse.parse_qsl(raw.decode()))
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            api.requests.append((method, parts.path, body))
            if api.fail_next:
                status, text = api.fail_next.pop(0)
                self._reply(status, text, "text/plain")
                return
            status, answer = route(method, parts.path, query, body, self.headers)
            self._reply(status, json.dumps(answer), "application/json")

        def _reply(self, status: int, text: str, ctype: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


@contextmanager
def _serve(api: FakeAPI, route: Any, prefix: str = "") -> Iterator[FakeAPI]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api, route))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def fake_verda(client_id: str, client_secret: str) -> Iterator[FakeAPI]:
    api = FakeAPI()
    token = "verda-token-123"

    def route(method: str, path: str, query: Any, body: Any, headers: Any) -> Any:
        if method == "POST" and path == "/v1/oauth2/token":
            body = body or {}
            if (
                body.get("grant_type") == "client_credentials"
                and body.get("client_id") == client_id
                and body.get("client_secret") == client_secret
            ):
                return 200, {
                    "access_token": token,
                    "refresh_token": "refresh-456",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": "cloud-api-v1",
                }
            return 401, {
                "code": "unauthorized_request",
                "message": "Invalid client credentials",
            }
        if headers.get("Authorization") != f"Bearer {token}":
            return 401, {"code": "unauthorized_request", "message": "Invalid token"}
        if method == "GET" and path == "/v1/instance-types":
            return 200, VERDA_TYPES
        if method == "GET" and path == "/v1/instance-availability":
            return 200, VERDA_AVAILABILITY
        return 404, {"code": "not_found", "message": f"no route {path}"}

    with _serve(api, route, "/v1") as served:
        yield served


@contextmanager
def fake_vast(api_key: str) -> Iterator[FakeAPI]:
    api = FakeAPI()

    def route(method: str, path: str, query: Any, body: Any, headers: Any) -> Any:
        given = headers.get("Authorization", "").removeprefix("Bearer ")
        if given != api_key and query.get("api_key") != api_key:
            status = 404 if path == "/api/v0/bundles/" else 401
            return status, {
                "success": False,
                "error": "auth_error",
                "msg": "Invalid user key",
            }
        if method == "POST" and path == "/api/v0/bundles/":
            offers = [
                o
                for o in VAST_OFFERS
                if all(
                    _matches(o, field, test)
                    for field, test in (body or {}).items()
                    if field not in _RESERVED
                )
            ]
            for field, direction in reversed((body or {}).get("order", [])):
                offers.sort(key=lambda o: o[field], reverse=direction == "desc")
            return 200, {"offers": offers[: (body or {}).get("limit", 64)]}
        return 404, {"success": False, "error": "not_found", "msg": path}

    with _serve(api, route) as served:
        yield served
