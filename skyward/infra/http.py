"""JSON over HTTP for the provider APIs, with their errors translated once.

Verda and VastAI speak small REST APIs; the standard library's urllib is
enough for them. Every failure becomes a :class:`ProviderAPIError` naming the
provider, the request and what the API said. 429 and 5xx answers are retried
with a growing pause, as the vendors' own clients do.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from skyward.errors import ProviderAPIError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ATTEMPTS = 4
FIRST_PAUSE = 0.15


def request_json(
    provider: str,
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Any:
    """Send one request and return the decoded JSON answer (or its text)."""
    if query:
        url = f"{url}?{urllib.parse.urlencode(query)}"
    headers = {"Accept": "application/json", "User-Agent": "skyward"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    pause = FIRST_PAUSE
    for attempt in range(1, ATTEMPTS + 1):
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            if exc.code in RETRY_STATUSES and attempt < ATTEMPTS:
                log.debug("%s %s %s: %d, retrying", provider, method, url, exc.code)
                time.sleep(pause)
                pause *= 1.5
                continue
            raise ProviderAPIError(
                provider,
                f"{provider} API {method} {_path(url)} failed with HTTP {exc.code}: "
                f"{_message(text)}",
                status=exc.code,
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ProviderAPIError(
                provider,
                f"Could not reach the {provider} API at {_origin(url)}: {reason}",
            ) from None
        log.debug("%s %s %s: ok", provider, method, url)
        return _decode(raw)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return text


def _message(text: str) -> str:
    """The human part of an error body: ``msg``/``message``/``error`` or the text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:500] or "(empty body)"
    if isinstance(data, dict):
        for key in ("msg", "message", "error_description", "error", "detail"):
            if data.get(key):
                return str(data[key])
    return text.strip()[:500]


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path
