"""What is in the backend: named pools, TTLs, and garbage collection.

``skyward ls`` reads :func:`describe_stacks`; ``skyward gc`` runs
:func:`collect`, which destroys the stacks that should no longer exist:
ephemeral stacks older than a limit (their client died before its
``destroy``) and any stack past its own TTL.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from skyward.errors import SkywardError
from skyward.infra.engine import Engine

log = logging.getLogger(__name__)

EPHEMERAL_PREFIX = "eph-"


@dataclass(frozen=True)
class StackInfo:
    """One stack as ``skyward ls`` shows it."""

    name: str
    provider: str = "?"
    nodes: int | None = None
    created: dt.datetime | None = None
    ttl: float | None = None
    owner: str = ""
    ephemeral: bool = False
    update_in_progress: bool = False
    resource_count: int | None = None

    def age(self, now: dt.datetime) -> dt.timedelta | None:
        return None if self.created is None else now - self.created

    def expired(self, now: dt.datetime, older_than: dt.timedelta) -> str | None:
        """Why ``gc`` should destroy this stack, or None to keep it."""
        age = self.age(now)
        if age is None or self.update_in_progress:
            return None
        if self.ttl is not None and age.total_seconds() > self.ttl:
            return f"past its TTL of {format_duration(self.ttl)}"
        if self.ephemeral and age > older_than:
            return f"ephemeral and {format_duration(age.total_seconds())} old"
        return None


def short_name(name: str) -> str:
    """``organization/skyward/NAME`` -> ``NAME``."""
    return name.rsplit("/", 1)[-1]


def _parse_time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value:
        try:
            return _parse_time(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def describe_stacks(engine: Engine) -> list[StackInfo]:
    """Every Skyward stack in the backend, from its outputs where it has them.

    A stack whose ``up`` never finished has no outputs: its name tells
    whether it was ephemeral, and its last update stands for its age.
    """
    workspace = engine.workspace()
    infos = []
    for summary in workspace.list_stacks():
        name = short_name(summary.name)
        try:
            outputs = workspace.stack_outputs(name)
        except engine.api.CommandError as exc:
            log.debug("No outputs for stack %s: %s", name, exc)
            outputs = {}
        meta = outputs["meta"].value if "meta" in outputs else {}
        infos.append(
            StackInfo(
                name=name,
                provider=meta.get("provider", "?"),
                nodes=meta.get("nodes"),
                created=_parse_time(meta.get("created"))
                or _parse_time(summary.last_update),
                ttl=meta.get("ttl"),
                owner=meta.get("owner", ""),
                ephemeral=meta.get("ephemeral", name.startswith(EPHEMERAL_PREFIX)),
                update_in_progress=bool(summary.update_in_progress),
                resource_count=summary.resource_count,
            )
        )
    return sorted(infos, key=lambda info: info.name)


@dataclass
class GcReport:
    """What ``gc`` destroyed, would destroy, kept, and could not clean."""

    destroyed: list[str] = field(default_factory=list)
    would_destroy: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    cleared: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def clear_pending_operations(stack: Any, api: Any) -> list[str]:
    """Drop the pending operations an interrupted run left in the state.

    Returns them as ``op type urn`` lines: a pending create may have made a
    resource the state does not track, which the caller must report.
    """
    exported = stack.export_stack()
    deployment = dict(exported.deployment or {})
    pending = deployment.get("pending_operations") or []
    if not pending:
        return []
    lines = [
        f"{op.get('type', '?')} {op.get('resource', {}).get('urn', '?')}"
        for op in pending
    ]
    deployment["pending_operations"] = []
    stack.import_stack(api.Deployment(version=exported.version, deployment=deployment))
    log.warning("Cleared pending operations of %s: %s", stack.name, "; ".join(lines))
    return lines


def collect(
    engine: Engine,
    older_than: dt.timedelta,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> GcReport:
    """Destroy expired stacks (see :meth:`StackInfo.expired`)."""
    now = now or dt.datetime.now(dt.UTC)
    report = GcReport()
    for info in describe_stacks(engine):
        reason = info.expired(now, older_than)
        if reason is None:
            report.kept.append(info.name)
            continue
        report.reasons[info.name] = reason
        if dry_run:
            report.would_destroy.append(info.name)
            continue
        try:
            stack = engine.select(info.name)
            if stack is None:
                continue
            cleared = clear_pending_operations(stack, engine.api)
            if cleared:
                report.cleared[info.name] = cleared
            engine.destroy(stack)
        except (SkywardError, engine.api.CommandError) as exc:
            report.failed[info.name] = str(exc)
            continue
        report.destroyed.append(info.name)
    return report


def format_duration(seconds: float) -> str:
    """``5400`` -> ``1h30m``; ``90`` -> ``1m30s``; ``10814`` -> ``3h``."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    first = next((i for i, (value, _) in enumerate(parts) if value), len(parts) - 1)
    # The largest unit and the one below it: 3h0m14s reads as 3h.
    shown = [f"{value}{unit}" for value, unit in parts[first : first + 2] if value]
    return "".join(shown) or "0s"


def parse_duration(text: str) -> dt.timedelta:
    """``2h``, ``30m``, ``1d12h``, ``90s`` or bare seconds, as a timedelta."""
    import re

    cleaned = text.strip().lower()
    if cleaned.isdigit():
        return dt.timedelta(seconds=int(cleaned))
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([dhms])", cleaned)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != cleaned.replace(" ", ""):
        raise ValueError(
            f"cannot read {text!r} as a duration; write for example 2h, 30m, 1d12h"
        )
    unit_seconds = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return dt.timedelta(seconds=sum(float(n) * unit_seconds[u] for n, u in parts))
