"""sky.MultiPool: pools open together and are always torn down together."""

from __future__ import annotations

import pytest
from exec_helpers import Leaks

import skyward as sky
from skyward.errors import ProvisioningError
from skyward.events import PoolReady, ProvisioningStarted, SkywardEvent


@sky.compute
def whoami() -> str:
    return sky.instance_info().pool


class Timeline:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, event: SkywardEvent) -> None:
        if isinstance(event, ProvisioningStarted | PoolReady):
            self.events.append((type(event).__name__, event.pool))


def broken_pool(name: str) -> sky.ComputePool:
    """A pool whose node process exits at once, so provisioning fails."""
    return sky.ComputePool(provider=sky.Local(python="/bin/false"), name=name)


def test_pools_open_concurrently_unpack_as_a_tuple_and_all_close() -> None:
    timeline = Timeline()
    leaks = Leaks()
    pools = [
        sky.ComputePool(provider=sky.Local(), name=name, on_event=timeline)
        for name in ("prep", "train", "eval")
    ]
    with sky.MultiPool(*pools) as (prep, train, evaluate):
        assert (prep, train, evaluate) == tuple(pools)
        for pool in pools:
            leaks.record(pool)
        assert [whoami() >> p for p in (prep, train, evaluate)] == [
            "prep",
            "train",
            "eval",
        ]
    # Every pool started provisioning before any was ready: setup overlapped.
    kinds = [kind for kind, _ in timeline.events]
    assert kinds == ["ProvisioningStarted"] * 3 + ["PoolReady"] * 3
    assert not any(pool.is_open for pool in pools)
    leaks.assert_gone()


def test_a_pool_that_fails_to_provision_tears_the_others_down() -> None:
    leaks = Leaks()
    recorded: list[bool] = []

    def record_when_ready(event: SkywardEvent) -> None:
        if isinstance(event, PoolReady):
            leaks.record(good)
            recorded.append(True)

    good = sky.ComputePool(
        provider=sky.Local(), nodes=2, name="good", on_event=record_when_ready
    )
    multi = sky.MultiPool(good, broken_pool("bad"))
    with pytest.raises(ProvisioningError, match="did not start"):
        with multi:
            pytest.fail("the body must not run when a pool failed")
    assert not good.is_open
    assert recorded == [True]  # the good pool was up before it was torn down
    leaks.assert_gone()


def test_the_first_failure_is_raised_and_the_others_are_noted() -> None:
    multi = sky.MultiPool(broken_pool("first"), broken_pool("second"))
    with pytest.raises(ProvisioningError) as info:
        multi.open()
    notes = info.value.__notes__
    assert any("Another pool of the MultiPool also failed" in n for n in notes)


def test_an_error_in_the_body_propagates_after_every_pool_is_torn_down(
    leaks: Leaks,
) -> None:
    pools = [sky.ComputePool(provider=sky.Local()) for _ in range(2)]
    with pytest.raises(KeyError, match="from the body"):
        with sky.MultiPool(*pools):
            for pool in pools:
                leaks.record(pool)
            raise KeyError("from the body")
    assert not any(pool.is_open for pool in pools)
    leaks.assert_gone()


def test_multipool_arguments_are_checked() -> None:
    pool = sky.ComputePool(provider=sky.Local())
    with pytest.raises(TypeError, match="at least one"):
        sky.MultiPool()
    with pytest.raises(TypeError, match="argument 1 is str"):
        sky.MultiPool(pool, "pool")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same ComputePool twice"):
        sky.MultiPool(pool, pool)
