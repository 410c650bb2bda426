"""Helpers for the events tests: a Local provider that costs money, a recorder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from skyward import events
from skyward.errors import ProvisioningError
from skyward.infra.base import Emit, PoolOptions, Provisioned
from skyward.infra.providers import Local
from skyward.infra.providers.local import LocalProvisioner
from skyward.spec import PoolSpec


class PricedLocal(Local):
    """Local nodes billed at a made-up hourly rate, to test cost accounting.

    ``per_instance``: report the price on each instance instead of as the
    pool's rate, as a provider that only knows per-instance prices would.
    """

    rate: float = 3600.0
    per_instance: bool = False

    def provisioner(
        self, spec: PoolSpec, pool_name: str, emit: Emit, options: PoolOptions
    ) -> PricedProvisioner:
        return PricedProvisioner(LocalProvisioner(self, spec, pool_name, emit), self)


class PricedProvisioner:
    def __init__(self, inner: LocalProvisioner, config: PricedLocal):
        self.inner = inner
        self.config = config
        self.pids: list[int] = []

    async def provision(self) -> Provisioned:
        provisioned = await self.inner.provision()
        self.pids = list(self.inner.pids)
        if self.config.per_instance:
            share = self.config.rate / len(provisioned.instances)
            provisioned.instances = [
                events.InstanceInfo(
                    instance_id=i.instance_id,
                    ip=i.ip,
                    node=i.node,
                    spot=True,
                    instance_type="local.test",
                    hourly_price=share,
                )
                for i in provisioned.instances
            ]
        else:
            provisioned.hourly_rate = self.config.rate
        return provisioned

    async def teardown(self) -> None:
        await self.inner.teardown()


class Recorder:
    """A callback that keeps every event, safe to read from the test thread."""

    def __init__(self) -> None:
        self.events: list[events.SkywardEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: events.SkywardEvent) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def names(self) -> list[str]:
        with self._lock:
            return [type(e).__name__ for e in self.events]

    def wait_for(
        self, predicate: Callable[[Recorder], bool], timeout: float = 20.0
    ) -> None:
        """Wait until ``predicate(self)`` holds; fail the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                pytest.fail(f"condition not met within {timeout} s; saw {self.names()}")
            time.sleep(0.02)


class FailingLocal(Local):
    """Local nodes whose provisioning fails after the nodes started."""

    def provisioner(
        self, spec: PoolSpec, pool_name: str, emit: Emit, options: PoolOptions
    ) -> FailingProvisioner:
        return FailingProvisioner(LocalProvisioner(self, spec, pool_name, emit))


class FailingProvisioner:
    def __init__(self, inner: LocalProvisioner):
        self.inner = inner
        self.torn_down = False

    async def provision(self) -> Provisioned:
        await self.inner.provision()
        raise ProvisioningError("the test's provider refuses to finish")

    async def teardown(self) -> None:
        self.torn_down = True
        await self.inner.teardown()
