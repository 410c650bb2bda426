"""What every provider gives the pool: a provisioner that brings nodes up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from skyward import events
from skyward.cluster import NodeEndpoint
from skyward.errors import ConfigurationError
from skyward.spec import InstanceSpec, PoolSpec, ProviderConfig

Emit = Callable[[events.SkywardEvent], None]


@dataclass(frozen=True)
class PoolOptions:
    """How a pool treats existing state; not part of what it creates.

    ``update``: a named pool whose stored spec differs is updated in place
    instead of refused. ``keep``: keep the nodes after the pool closes
    (default: ephemeral pools are destroyed, named ones kept).
    """

    update: bool = False
    keep: bool | None = None


@dataclass
class Provisioned:
    """The nodes a provisioner brought up, and what they cost."""

    endpoints: list[NodeEndpoint]
    head_port: int
    hourly_rate: float = 0.0
    instances: list[events.InstanceInfo] = field(default_factory=list)


class Provisioner(Protocol):
    """Creates a pool's nodes and destroys them again.

    ``teardown`` must be safe to call after a failed or partial ``provision``
    and more than once: it is how a failure mid-way leaves nothing behind.
    """

    async def provision(self) -> Provisioned: ...

    async def teardown(self) -> None: ...


class Provider(ProviderConfig):
    """A provider configuration that can provision pools.

    ``on_this_machine``: its nodes run on the client's machine (Local), so
    the bootstrap reuses the client's packages instead of installing them.
    """

    on_this_machine: ClassVar[bool] = False

    def provisioner(
        self, spec: PoolSpec, pool_name: str, emit: Emit, options: PoolOptions
    ) -> Provisioner:
        raise TypeError(f"{type(self).__name__} cannot provision pools")

    def available_instances(self) -> list[InstanceSpec]:
        """The kinds of machine this provider offers, with prices per hour."""
        raise ConfigurationError(
            f"{type(self).__name__} cannot list its instances; instance discovery "
            "works with sky.AWS(), sky.Verda(), sky.VastAI() and sky.Local()."
        )
