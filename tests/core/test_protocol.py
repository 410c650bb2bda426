"""The frame decoder: any split of the byte stream gives the same frames."""

from __future__ import annotations

import os

from skyward.runtime.protocol import CHUNK, LOG, RESULT, FrameDecoder, frame_header


def frames(*payloads: bytes) -> bytes:
    return b"".join(frame_header(RESULT, len(p)) + p for p in payloads)


def decode(stream: bytes, step: int) -> list[tuple[int, bytes]]:
    decoder = FrameDecoder()
    out = []
    for i in range(0, len(stream), step):
        out.extend((kind, bytes(p)) for kind, p in decoder.feed(stream[i : i + step]))
    return out


def test_small_frames_survive_any_split():
    payloads = [b"", b"a", os.urandom(1000), b"xyz" * 50]
    stream = frames(*payloads)
    for step in (1, 2, 7, 64, len(stream)):
        assert decode(stream, step) == [(RESULT, p) for p in payloads]


def test_a_large_frame_is_reassembled_between_small_ones():
    big = os.urandom(5 * CHUNK + 123)
    stream = frames(b"before", big, b"after") + frame_header(LOG, 2) + b"hi"
    for step in (1000, CHUNK, 3 * CHUNK + 1):
        assert decode(stream, step) == [
            (RESULT, b"before"),
            (RESULT, big),
            (RESULT, b"after"),
            (LOG, b"hi"),
        ]
