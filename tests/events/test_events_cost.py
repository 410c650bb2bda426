"""Cost: the pool's hourly rate, CostUpdate while it lives, CostFinal, max_cost."""

from __future__ import annotations

import os
import time

import pytest
from events_helpers import PricedLocal, PricedProvisioner, Recorder

import skyward as sky
from skyward.errors import ConfigurationError, CostLimitExceeded


@sky.compute
def nap(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_local_costs_nothing(recorder: Recorder) -> None:
    with sky.ComputePool(console=False, on_event=recorder, cost_interval=0.2) as pool:
        assert pool.hourly_rate == 0.0
        recorder.wait_for(lambda r: len(r.of(sky.CostUpdate)) >= 1)
    update = recorder.of(sky.CostUpdate)[0]
    assert (update.hourly_rate, update.total_cost) == (0.0, 0.0)
    final = recorder.of(sky.CostFinal)[0]
    assert (final.hourly_rate, final.total_cost) == (0.0, 0.0)
    assert final.duration_seconds > 0


def test_cost_updates_while_the_pool_lives_and_cost_final_comes_last(
    recorder: Recorder,
) -> None:
    rate = 36.0  # dollars per hour: one cent a second
    with sky.ComputePool(
        provider=PricedLocal(rate=rate),
        console=False,
        on_event=recorder,
        cost_interval=0.2,
        metrics_interval=None,
    ) as pool:
        assert pool.hourly_rate == rate
        recorder.wait_for(lambda r: len(r.of(sky.CostUpdate)) >= 3)
    updates = recorder.of(sky.CostUpdate)
    for update in updates:
        assert update.hourly_rate == rate
        assert update.total_cost == pytest.approx(
            rate * update.elapsed_seconds / 3600, rel=0.05
        )
    costs = [u.total_cost for u in updates]
    assert costs == sorted(costs) and costs[0] < costs[-1]
    assert recorder.names()[-1] == "CostFinal"
    final = recorder.of(sky.CostFinal)[0]
    assert final.hourly_rate == rate
    assert final.total_cost == pytest.approx(rate * final.duration_seconds / 3600)
    assert final.total_cost >= costs[-1]
    assert final.duration_seconds == recorder.of(sky.PoolStopped)[0].seconds


def test_rate_is_the_sum_of_instance_prices_when_the_provider_gives_those(
    recorder: Recorder,
) -> None:
    provider = PricedLocal(rate=1.5, per_instance=True)
    with sky.ComputePool(provider=provider, nodes=2, console=False) as pool:
        assert pool.provisioned is not None
        assert [i.hourly_price for i in pool.provisioned.instances] == [0.75, 0.75]
        assert pool.hourly_rate == pytest.approx(1.5)
        assert pool.total_cost > 0


def test_max_cost_stops_the_pool_and_fails_its_tasks(recorder: Recorder) -> None:
    # $3600/h is a dollar a second: a $1.50 limit is reached a second or so
    # after the pool is ready, while the task below still sleeps.
    opened = time.monotonic()
    with sky.ComputePool(
        provider=PricedLocal(rate=3600.0),
        console=False,
        on_event=recorder,
        max_cost=1.5,
        metrics_interval=None,
    ) as pool:
        provisioner = pool._provisioner
        assert isinstance(provisioner, PricedProvisioner)
        pids = provisioner.pids
        assert pids and all(alive(p) for p in pids)
        queued = [pool.submit(nap, 60) for _ in range(3)]
        with pytest.raises(CostLimitExceeded) as caught:
            queued[0].result(timeout=60)
        error = caught.value
        assert (error.pool, error.max_cost, error.hourly_rate) == (
            pool.name,
            1.5,
            3600.0,
        )
        assert error.total_cost >= 1.5
        assert "max_cost" in str(error) and pool.name in str(error)
        for future in queued[1:]:
            assert isinstance(future.exception(timeout=30), CostLimitExceeded)

        # The nodes are torn down at once, not when the block ends.
        deadline = time.monotonic() + 30
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in pids)
        with pytest.raises(CostLimitExceeded):
            nap(0) >> pool
        with pytest.raises(CostLimitExceeded):
            pool.submit(nap, 0)
        recorder.wait_for(lambda r: pool._stopped_at is not None)
        time.sleep(0.3)
    block = time.monotonic() - opened

    assert recorder.names()[-2:] == ["PoolStopped", "CostFinal"]
    # The tasks that were running report their failure like any other result.
    failed = [r for r in recorder.of(sky.FunctionResult) if not r.ok]
    assert failed and all(
        (r.error or "").startswith("CostLimitExceeded") for r in failed
    )
    stopped = recorder.of(sky.PoolStopped)[0]
    assert stopped.error is not None and stopped.error.startswith("CostLimitExceeded")
    final = recorder.of(sky.CostFinal)[0]
    assert final.total_cost >= 1.5
    assert final.total_cost == pytest.approx(final.duration_seconds)  # $1/s
    # The time the block went on after the stop is not billed.
    assert final.duration_seconds <= block - 0.3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"metrics_interval": -1}, "`metrics_interval` must be a number of seconds"),
        ({"metrics_interval": 0.01}, "at least 0.1, not 0.01"),
        ({"metrics_interval": "fast"}, "not 'fast'; None or 0 turns it off"),
        ({"metrics_interval": float("nan")}, "not nan"),
        ({"metrics_interval": True}, "not True"),
        ({"cost_interval": 0}, "`cost_interval` must be a number of seconds"),
        ({"cost_interval": None}, "`cost_interval`"),
        ({"console": "yes"}, "`console` must be True"),
        ({"on_event": 42}, "`on_event` must be a callable"),
        ({"max_cost": -1}, "max_cost"),
    ],
)
def test_bad_monitoring_options_are_refused_before_anything_starts(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        sky.ComputePool(**options)  # type: ignore[arg-type]


def test_metrics_can_be_turned_off() -> None:
    assert sky.ComputePool(metrics_interval=None).metrics_interval is None
    assert sky.ComputePool(metrics_interval=0).metrics_interval is None
    assert sky.ComputePool(metrics_interval=5).metrics_interval == 5.0
