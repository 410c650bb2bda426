"""The frames a client and a worker exchange over the worker's stdin/stdout.

Each frame is a 9-byte header, ``!QB`` (payload length, kind), followed by
the payload. Kinds and payload layouts:

    client -> worker                       worker -> client
    INIT   pickled dict (instance info)    HELLO  JSON versions
    FUNC   !Q func id + pickled function   RESULT !QBd task id, ok, seconds
    TASK   !QQ task id, func id + pickled         + pickled value or error
           (args, kwargs)                  LOG    !B stream + UTF-8 text

This module is shipped to nodes, so it uses only the standard library.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

HEADER = struct.Struct("!QB")
TASK_HEAD = struct.Struct("!QQ")
FUNC_HEAD = struct.Struct("!Q")
RESULT_HEAD = struct.Struct("!QBd")
LOG_HEAD = struct.Struct("!B")

HELLO = 1
INIT = 2
FUNC = 3
TASK = 4
RESULT = 5
LOG = 6

STDOUT = 1
STDERR = 2

# How many functions a worker keeps. Client and worker evict the least
# recently used one in the same order (frames arrive in the order they were
# sent), so the client always knows which functions a worker still has.
FUNCTION_CACHE = 256

# Payloads are written in pieces of at most this size, so a large argument
# never needs a second full-size copy in any buffer.
CHUNK = 256 * 1024


def frame_header(kind: int, length: int) -> bytes:
    return HEADER.pack(length, kind)


class FrameDecoder:
    """Incremental decoder: feed it bytes, get back ``(kind, payload)`` pairs.

    Small frames are cut from an accumulating buffer. A frame whose payload is
    larger than the bytes at hand gets one buffer of exactly its size that the
    following reads fill in place, so a 256 MiB result is copied once.
    """

    __slots__ = ("_big", "_big_filled", "_big_kind", "_buf")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._big: bytearray | None = None
        self._big_kind = 0
        self._big_filled = 0

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes | bytearray]]:
        view = memoryview(data)
        while view:
            if self._big is not None:
                need = len(self._big) - self._big_filled
                take = min(need, len(view))
                self._big[self._big_filled : self._big_filled + take] = view[:take]
                self._big_filled += take
                view = view[take:]
                if self._big_filled == len(self._big):
                    frame, self._big = self._big, None
                    yield self._big_kind, frame
                continue
            self._buf += view
            view = view[len(view) :]
            yield from self._drain()

    def _drain(self) -> Iterator[tuple[int, bytes | bytearray]]:
        buf = self._buf
        pos = 0
        size = HEADER.size
        while len(buf) - pos >= size:
            length, kind = HEADER.unpack_from(buf, pos)
            start = pos + size
            end = start + length
            if end <= len(buf):
                yield kind, bytes(buf[start:end])
                pos = end
                continue
            if length > 4 * CHUNK:
                big = bytearray(length)
                have = len(buf) - start
                big[:have] = buf[start:]
                self._big, self._big_kind, self._big_filled = big, kind, have
                pos = len(buf)
            break
        del buf[:pos]
