"""compose, use_callback and the Dispatcher that isolates failing callbacks."""

from __future__ import annotations

import contextvars
import logging
import threading

import pytest
from events_helpers import Recorder

import skyward as sky
from skyward import callback
from skyward.callback import Dispatcher, compose, use_callback
from skyward.events import LogLine, PoolReady, SkywardEvent

READY = PoolReady(pool="p", nodes=1, slots=1, seconds=0.1)


def line(text: str) -> LogLine:
    return LogLine(pool="p", node=0, slot=0, stream="stdout", line=text)


def test_compose_calls_each_in_order_and_skips_none() -> None:
    seen: list[str] = []
    both = compose(
        lambda e: seen.append(f"a:{type(e).__name__}"),
        None,
        lambda e: seen.append(f"b:{type(e).__name__}"),
    )
    both(READY)
    assert seen == ["a:PoolReady", "b:PoolReady"]


def test_dispatcher_isolates_each_part_of_a_composed_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def broken(event: SkywardEvent) -> None:
        raise RuntimeError("callback bug")

    inner = compose(broken, lambda e: seen.append("inner"))
    dispatch = Dispatcher([compose(inner, lambda e: seen.append("outer"))])
    with caplog.at_level(logging.ERROR, logger="skyward"):
        for i in range(5):
            dispatch(line(str(i)))
    assert seen == ["inner", "outer"] * 5
    reports = [r for r in caplog.records if "raised on LogLine" in r.getMessage()]
    assert len(reports) == 1
    assert "broken" in reports[0].getMessage()
    assert reports[0].name == "skyward.callback"
    assert reports[0].exc_info is not None


def test_slow_callback_is_reported_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(callback, "SLOW_CALLBACK", -1.0)  # every call counts as slow
    dispatch = Dispatcher([lambda e: None])
    with caplog.at_level(logging.WARNING, logger="skyward"):
        dispatch(READY)
        dispatch(READY)
    slow = [r for r in caplog.records if "hold up every pool" in r.getMessage()]
    assert len(slow) == 1


def test_use_callback_nests_and_resets() -> None:
    first, second = Recorder(), Recorder()
    assert callback.active_callbacks() == ()
    with use_callback(first) as given:
        assert given is first
        with use_callback(second):
            assert callback.active_callbacks() == (first, second)
        assert callback.active_callbacks() == (first,)
    assert callback.active_callbacks() == ()


def test_use_callback_is_local_to_its_context() -> None:
    seen: list[tuple[object, ...]] = []
    with use_callback(Recorder()):
        copied = contextvars.copy_context()
        thread = threading.Thread(
            target=lambda: seen.append(callback.active_callbacks())
        )
        thread.start()
        thread.join()
    assert seen == [()]  # a plain thread starts with a fresh context
    assert len(copied.run(callback.active_callbacks)) == 1


@sky.compute
def double(x: int) -> int:
    return 2 * x


def test_use_callback_applies_to_pools_opened_inside_it(recorder: Recorder) -> None:
    with use_callback(recorder):
        with sky.ComputePool(console=False, metrics_interval=None) as pool:
            assert double(4) >> pool == 8
    after = Recorder()
    with sky.ComputePool(console=False, on_event=after, metrics_interval=None) as pool:
        assert double(5) >> pool == 10
    assert recorder.names()[0] == "ProvisioningStarted"
    assert recorder.names()[-1] == "CostFinal"
    assert [r.function_name for r in recorder.of(sky.FunctionResult)] == ["double"]
    # The block had ended: the second pool's events went only to its own callback.
    assert {e.pool for e in recorder.events} == {recorder.events[0].pool}
    assert len(after.of(sky.FunctionResult)) == 1


def test_callback_that_raises_does_not_break_the_pool(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def broken(event: SkywardEvent) -> None:
        nonlocal calls
        calls += 1
        raise ValueError(f"bad callback on {type(event).__name__}")

    with caplog.at_level(logging.ERROR, logger="skyward"):
        with sky.ComputePool(
            nodes=2,
            console=False,
            on_event=compose(broken, recorder),
            metrics_interval=None,
        ) as pool:
            assert sky.gather(*(double(i) for i in range(6))) >> pool == (
                0,
                2,
                4,
                6,
                8,
                10,
            )
            assert double(21) @ pool == (42, 42)
    reports = [r for r in caplog.records if "bad callback" in str(r.exc_info)]
    assert len(reports) == 1
    assert calls == len(recorder.events)  # it was called for every event
    assert len(recorder.of(sky.FunctionResult)) == 8
    assert recorder.names()[-2:] == ["PoolStopped", "CostFinal"]
