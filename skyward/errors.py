"""Skyward's exceptions: one hierarchy rooted in :class:`SkywardError`.

Errors raised by lower libraries (asyncssh, Pulumi, HTTP clients) are
translated into these at the boundary where Skyward calls them, so callers
catch one family of exceptions and every message names what went wrong and
what to do about it.
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor


class SkywardError(Exception):
    """Base class of every error Skyward raises on purpose."""


class ConfigurationError(SkywardError, ValueError):
    """A pool, image or provider was given a value it cannot accept."""


class MissingCredentialsError(ConfigurationError):
    """A provider needs credentials and none were given or found."""


class ProviderAPIError(SkywardError):
    """A provider's API answered with an error (or not at all).

    ``status`` is the HTTP status (None when the API could not be reached).
    """

    def __init__(self, provider: str, message: str, status: int | None = None):
        self.provider = provider
        self.status = status
        super().__init__(message)


class NoActivePoolError(SkywardError, RuntimeError):
    """``>> sky`` or ``@ sky`` was used outside a pool."""


class SerializationError(SkywardError, TypeError):
    """A function, argument or result could not be pickled."""


class ProvisioningError(SkywardError):
    """A provider could not bring the pool's nodes up."""


class BootstrapError(ProvisioningError):
    """A bootstrap step failed on a node.

    Carries the node, the step and the tail of the step's output.
    """

    def __init__(
        self,
        node: int,
        step: str,
        output: str,
        exit_status: int | None,
        hint: str = "",
    ):
        self.node = node
        self.step = step
        self.output = output
        self.exit_status = exit_status
        self.hint = hint
        tail = "\n".join(output.rstrip().splitlines()[-20:])
        status = f" with exit status {exit_status}" if exit_status is not None else ""
        advice = f"\n{hint}" if hint else ""
        super().__init__(
            f"Bootstrap step {step!r} failed on node {node}{status}.{advice}\n"
            f"Last lines of its output:\n{tail}"
        )

    def __reduce__(self) -> tuple[type, tuple[int, str, str, int | None]]:
        return type(self), (self.node, self.step, self.output, self.exit_status)


class VersionMismatchError(ProvisioningError):
    """A node's Python or cloudpickle differs from the client's."""


class PoolBrokenError(SkywardError, BrokenExecutor):
    """The pool can no longer run tasks (every node is gone, or it was closed).

    A :class:`concurrent.futures.BrokenExecutor` (so a ``RuntimeError``), as
    the standard library's executors raise when their workers are gone.
    """


class NodeLostError(SkywardError, ConnectionError):
    """A node went away while it had work in flight."""

    def __init__(self, node: int, reason: str):
        self.node = node
        self.reason = reason
        super().__init__(f"Node {node} was lost: {reason}")

    def __reduce__(self) -> tuple[type, tuple[int, str]]:
        return type(self), (self.node, self.reason)


class WorkerDiedError(SkywardError, RuntimeError):
    """The worker process of a slot exited while running a task."""

    def __init__(self, node: int, slot: int, exit_status: int | None, stderr: str):
        self.node = node
        self.slot = slot
        self.exit_status = exit_status
        self.stderr = stderr
        detail = f" Its last output:\n{stderr.rstrip()}" if stderr.strip() else ""
        super().__init__(
            f"The worker of node {node}, slot {slot} exited with status "
            f"{exit_status} while running a task.{detail}"
        )

    def __reduce__(self) -> tuple[type, tuple[int, int, int | None, str]]:
        return type(self), (self.node, self.slot, self.exit_status, self.stderr)


class TaskAbortedError(SkywardError, RuntimeError):
    """A running task was stopped on purpose (its broadcast failed elsewhere).

    Its worker was killed, so a task blocked in a collective waiting for a
    failed peer does not hang; the slot is restarted.
    """

    def __init__(self, node: int, reason: str):
        self.node = node
        self.reason = reason
        super().__init__(f"The task on node {node} was stopped: {reason}")


class RemoteError(SkywardError):
    """A task raised an exception that could not be brought back as itself.

    Used when the original exception cannot be unpickled on the client (its
    class exists only on the node, say). ``type_name`` is the remote class.
    """

    def __init__(self, type_name: str, message: str, node: int | None = None):
        self.type_name = type_name
        self.message = message
        self.node = node
        super().__init__(f"{type_name}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, str, int | None]]:
        return type(self), (self.type_name, self.message, self.node)


class RemoteTraceback(Exception):
    """Carries a task's remote traceback text; attached as ``__cause__``."""

    def __init__(self, tb: str):
        self.tb = tb
        super().__init__(tb)

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


class CostLimitExceeded(SkywardError):
    """The pool's running cost reached its ``max_cost``; the pool was stopped.

    Tasks queued or running then fail with it, later calls raise it, and the
    nodes are torn down at once so the spending stops.
    """

    def __init__(
        self, pool: str, max_cost: float, total_cost: float, hourly_rate: float
    ):
        self.pool = pool
        self.max_cost = max_cost
        self.total_cost = total_cost
        self.hourly_rate = hourly_rate
        super().__init__(
            f"Pool {pool} reached its cost limit: ${total_cost:.4f} spent at "
            f"${hourly_rate:.2f}/h, max_cost=${max_cost:.4f}. Its tasks were "
            "stopped and its nodes torn down. Raise `max_cost` to let a pool "
            "run longer."
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (
            type(self),
            (self.pool, self.max_cost, self.total_cost, self.hourly_rate),
        )


class PulumiNotFoundError(ProvisioningError):
    """The Pulumi CLI is needed and is not installed."""


class StackError(ProvisioningError):
    """A Pulumi operation on a pool's stack failed.

    Carries the stack's name, the operation and the tail of the engine's
    output; ``capacity_refused`` is set when the cloud had no capacity
    (spot or on-demand) for what the stack asked.
    """

    def __init__(
        self,
        stack: str,
        operation: str,
        output: str,
        capacity_refused: bool = False,
        hint: str = "",
    ):
        self.stack = stack
        self.operation = operation
        self.output = output
        self.capacity_refused = capacity_refused
        tail = "\n".join(output.rstrip().splitlines()[-25:])
        hint = f"\n{hint}" if hint else ""
        super().__init__(
            f"`pulumi {operation}` failed on stack {stack!r}.{hint}\n"
            f"Last lines of the engine's output:\n{tail}"
        )


class StackDriftError(ConfigurationError):
    """A named pool's stored spec differs from the one asked for."""

    def __init__(self, stack: str, differences: list[str]):
        self.stack = stack
        self.differences = differences
        listed = "\n  ".join(differences)
        super().__init__(
            f"Named pool {stack!r} exists with a different spec:\n  {listed}\n"
            "Pass update=True to change the pool in place, use another name, or "
            f"run `skyward down {stack}` first."
        )
