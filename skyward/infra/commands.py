"""The ``skyward`` commands that manage pools' stacks.

``plan`` (offline, Pulumi's mocks), ``preview`` (the real ``pulumi
preview``), ``ls``, ``down``, ``gc``, ``doctor`` and ``install-pulumi``.
Exit codes scripts can rely on: 0 success, 1 the operation failed (or
``gc`` left something it could not clean), 2 bad arguments or spec, 3 the
Pulumi CLI is missing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from skyward.errors import ConfigurationError, PulumiNotFoundError, SkywardError

if TYPE_CHECKING:
    from skyward.infra.engine import Engine
    from skyward.infra.plan import Plan, PlannedResource

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_PULUMI = 3

BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Pulumi backend URL (default: SKYWARD_BACKEND, else "
        "file://~/.skyward/state).",
    ),
]


def make_engine(backend: str | None) -> Engine:
    """The engine the commands use; tests replace it."""
    from skyward.infra.engine import Engine, EngineSettings

    return Engine(EngineSettings.load(backend))


def _err(message: str) -> None:
    typer.echo(message, err=True)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Skyward's errors as a message on stderr and a documented exit code."""
    try:
        yield
    except PulumiNotFoundError as exc:
        _err(f"Error: {exc}")
        raise typer.Exit(EXIT_NO_PULUMI) from None
    except ConfigurationError as exc:
        _err(f"Error: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    except (SkywardError, ValueError) as exc:
        _err(f"Error: {exc}")
        raise typer.Exit(EXIT_FAILED) from None


# -- plan -------------------------------------------------------------------


def _read_spec_file(path: Path) -> dict[str, Any]:
    text = path.read_text()
    if path.suffix == ".toml":
        return tomllib.loads(text)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        loaded = yaml.safe_load(text)
    else:
        loaded = json.loads(text)
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"Spec file {path} must hold a mapping of fields.")
    return loaded


def parse_volume(text: str) -> dict[str, Any]:
    """``[/mount=]s3://bucket/prefix[:ro|:rw]`` as S3Volume fields."""
    mount, sep, url = text.partition("=")
    if not sep:
        mount, url = "", text
    read_only = False
    for suffix, flag in ((":ro", True), (":rw", False)):
        if url.endswith(suffix):
            url, read_only = url.removesuffix(suffix), flag
    if not url.startswith("s3://"):
        raise ConfigurationError(
            f"Volume {text!r} must look like s3://bucket/prefix[:ro], optionally "
            "preceded by the mount path: /data=s3://bucket/prefix:ro."
        )
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return {
        "mount_path": mount or f"/mnt/{bucket}",
        "bucket": bucket,
        "prefix": prefix,
        "read_only": read_only,
    }


def build_pool(fields: dict[str, Any]) -> tuple[Any, Any]:
    """A provider and a validated PoolSpec from the plan's fields."""
    from skyward.infra.providers import PROVIDERS
    from skyward.spec import PoolSpec, build

    fields = dict(fields)
    kind = str(fields.pop("provider", "aws")).lower()
    if kind not in PROVIDERS or kind == "local":
        raise ConfigurationError(
            f"Cannot plan provider {kind!r}: plans are for cloud providers "
            f"({', '.join(k for k in PROVIDERS if k != 'local')})."
        )
    provider_fields = (
        "region",
        "instance_type",
        "ami",
        "ssh_cidrs",
        "ssh_user",
        "root_volume_gb",
    )
    provider_args = {k: fields.pop(k) for k in provider_fields if k in fields}
    module, cls = PROVIDERS[kind]
    import importlib

    try:
        provider_cls = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError):
        raise ConfigurationError(
            f"The {kind!r} provider is not available in this version of Skyward."
        ) from None
    provider = build(provider_cls, "provider", **provider_args)
    volumes = [
        parse_volume(v) if isinstance(v, str) else v for v in fields.pop("volumes", [])
    ]
    spec = build(PoolSpec, "pool", provider=provider, volumes=volumes, **fields)
    provider.check(spec)
    if not hasattr(provider, "plan"):
        raise ConfigurationError(f"Provider {kind!r} has no stack program to plan.")
    return provider, spec


def _key_properties(resource: PlannedResource) -> str:
    inputs = resource.inputs
    kind = resource.type.rsplit(":", 1)[-1]
    if resource.type.startswith("pulumi:providers:"):
        return f"region {inputs.get('region', '?')}"
    if kind == "SecurityGroup":
        parts = []
        for rule in inputs.get("ingress", []):
            if rule.get("self"):
                parts.append("all traffic within the group")
            else:
                cidrs = ", ".join(rule.get("cidrBlocks", []))
                parts.append(f"{rule['protocol']}/{rule['fromPort']} from {cidrs}")
        return "ingress: " + "; ".join(parts) + "; egress: all"
    if kind == "Instance":
        market = inputs.get("instanceMarketOptions", {}).get("marketType", "on-demand")
        disk = inputs.get("rootBlockDevice", {})
        return (
            f"{inputs.get('instanceType')} {market}; ami {inputs.get('ami')}; "
            f"{disk.get('volumeSize')} GB {disk.get('volumeType')}; "
            f"on shutdown: {inputs.get('instanceInitiatedShutdownBehavior')}; "
            f"user data: {inputs.get('userData')}"
        )
    if kind == "RolePolicy":
        policy = json.loads(inputs.get("policy", "{}"))
        return "; ".join(
            f"{','.join(s['Action'])} on {','.join(s['Resource'])}"
            for s in policy.get("Statement", [])
        )
    if kind == "Role":
        return "assumed by ec2.amazonaws.com"
    if kind == "KeyPair":
        key_type = str(inputs.get("publicKey", "")).split(" ")[0]
        return f"imported {key_type} public key (a fresh key per pool)"
    if kind == "PlacementGroup":
        return f"strategy {inputs.get('strategy')}"
    shown = [
        f"{k}={v}"
        for k, v in inputs.items()
        if k != "tags" and isinstance(v, str | int)
    ]
    return ", ".join(shown[:3])


def _print_plan(plan: Plan, provider: Any, spec: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=max(120, shutil.get_terminal_size().columns))
    console.print(
        f"Plan for pool [bold]{escape(plan.stack)}[/bold] ({provider.kind}, "
        f"{spec.nodes} node{'s' if spec.nodes > 1 else ''}): "
        f"{len(plan.resources)} resources to create, no cloud call made."
    )
    table = Table(show_lines=False)
    table.add_column("TYPE", no_wrap=True)
    table.add_column("NAME", no_wrap=True)
    table.add_column("KEY PROPERTIES")
    for resource in plan.resources:
        table.add_row(
            resource.short_type, resource.name, escape(_key_properties(resource))
        )
    console.print(table)
    tagged = [r.inputs["tags"] for r in plan.resources if "tags" in r.inputs]
    if tagged and isinstance(tagged[0], dict):
        listed = ", ".join(f"{k}={v}" for k, v in sorted(tagged[0].items()))
        console.print(escape(f"Tags on every taggable resource: {listed}"))
    if plan.hourly_price is not None:
        console.print(
            escape(f"Estimated cost: ${plan.hourly_price:.4f}/h ({plan.price_note})")
        )
    else:
        console.print(escape(f"Estimated cost: unknown ({plan.price_note})"))


def plan(
    spec_file: Annotated[
        Path | None,
        typer.Option("--spec", help="JSON, YAML or TOML file of the pool's fields."),
    ] = None,
    provider: Annotated[str | None, typer.Option(help="Cloud provider: aws.")] = None,
    region: Annotated[str | None, typer.Option(help="Cloud region.")] = None,
    nodes: Annotated[int | None, typer.Option(help="Number of nodes.")] = None,
    cpu: Annotated[int | None, typer.Option(help="vCPUs per node.")] = None,
    memory: Annotated[
        str | None, typer.Option(help="Memory per node, e.g. 16GB.")
    ] = None,
    accelerator: Annotated[
        str | None, typer.Option(help="Accelerator per node, e.g. T4, A100.")
    ] = None,
    allocation: Annotated[
        str | None,
        typer.Option(help="spot, on-demand, spot-if-available or cheapest."),
    ] = None,
    volume: Annotated[
        list[str] | None,
        typer.Option(
            help="S3 volume, s3://bucket/prefix, optionally with a mount path "
            "before (/data=s3://...) and :ro after; repeat for more."
        ),
    ] = None,
    ssh_cidr: Annotated[
        list[str] | None,
        typer.Option(help="Who may SSH in (default: your address /32); repeat."),
    ] = None,
    instance_type: Annotated[
        str | None, typer.Option(help="Instance type, instead of choosing one.")
    ] = None,
    ami: Annotated[
        str | None, typer.Option(help="Image id, instead of the lookup.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Pool name (a named pool).")] = None,
    idle_timeout: Annotated[
        float | None, typer.Option(help="Seconds without a client before shutdown.")
    ] = None,
    ttl: Annotated[
        float | None, typer.Option(help="Seconds a named pool lives.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print resources and inputs as JSON.")
    ] = False,
) -> None:
    """Show what a pool would create and cost, offline: no cloud, no Pulumi CLI."""
    fields: dict[str, Any] = _read_spec_file(spec_file) if spec_file else {}
    flags = {
        "provider": provider,
        "region": region,
        "nodes": nodes,
        "cpu": cpu,
        "memory": memory,
        "accelerator": accelerator,
        "allocation": allocation,
        "volumes": volume or None,
        "ssh_cidrs": ssh_cidr or None,
        "instance_type": instance_type,
        "ami": ami,
        "name": name,
        "idle_timeout": idle_timeout,
        "ttl": ttl,
    }
    fields.update({k: v for k, v in flags.items() if v is not None})
    with _errors():
        pool_provider, spec = build_pool(fields)
        result = pool_provider.plan(spec)
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
    else:
        _print_plan(result, pool_provider, spec)


# -- stacks in the backend --------------------------------------------------


def _existing_stack(engine: Engine, name: str) -> Any:
    stack = engine.select(name)
    if stack is None:
        raise SkywardError(f"No stack named {name!r} in {engine.settings.backend}.")
    return stack


def preview(
    name: Annotated[str, typer.Argument(help="Stack (pool) name.")],
    backend: BackendOption = None,
) -> None:
    """Run the real `pulumi preview` of a pool's stack: what an up would change."""
    from skyward.infra.stacks import POOL

    with _errors():
        engine = make_engine(backend)
        stack = _existing_stack(engine, name)
        if POOL not in stack.get_all_config():
            stack.refresh_config()
        try:
            stack.preview(on_output=lambda line: typer.echo(line, nl=False))
        except engine.api.CommandError as exc:
            raise SkywardError(f"`pulumi preview` failed on {name!r}:\n{exc}") from exc


def _age(info: Any, now: dt.datetime) -> str:
    from skyward.infra.registry import format_duration

    age = info.age(now)
    return "?" if age is None else format_duration(age.total_seconds())


def ls(
    backend: BackendOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the pools' stacks in the backend: name, provider, nodes, age, TTL, owner."""
    from rich.console import Console
    from rich.table import Table

    from skyward.infra.registry import describe_stacks, format_duration

    with _errors():
        engine = make_engine(backend)
        infos = describe_stacks(engine)
    now = dt.datetime.now(dt.UTC)
    if as_json:
        rows = [
            {
                "name": i.name,
                "provider": i.provider,
                "nodes": i.nodes,
                "created": i.created.isoformat() if i.created else None,
                "age_seconds": (now - i.created).total_seconds() if i.created else None,
                "ttl": i.ttl,
                "owner": i.owner,
                "ephemeral": i.ephemeral,
            }
            for i in infos
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not infos:
        typer.echo(f"No stacks in {engine.settings.backend}.")
        return
    table = Table()
    for column in ("NAME", "PROVIDER", "NODES", "AGE", "TTL", "OWNER", "KIND"):
        table.add_column(column, no_wrap=True)
    for info in infos:
        table.add_row(
            info.name,
            info.provider,
            "?" if info.nodes is None else str(info.nodes),
            _age(info, now),
            "-" if info.ttl is None else format_duration(info.ttl),
            info.owner.rsplit("/", 1)[-1] or "?",
            "ephemeral" if info.ephemeral else "named",
        )
    Console(width=max(100, shutil.get_terminal_size().columns)).print(table)


def down(
    name: Annotated[str, typer.Argument(help="Stack (pool) name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    backend: BackendOption = None,
) -> None:
    """Destroy a pool's stack and everything it created, then remove it."""
    with _errors():
        engine = make_engine(backend)
        stack = _existing_stack(engine, name)
        if not yes and not typer.confirm(f"Destroy every resource of {name!r}?"):
            raise typer.Exit(EXIT_FAILED)
        engine.destroy(stack)
    typer.echo(f"Destroyed and removed {name}.")


def gc(
    older_than: Annotated[
        str,
        typer.Option(help="Age past which ephemeral stacks are leftovers (2h, 30m)."),
    ] = "2h",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go; destroy nothing.")
    ] = False,
    backend: BackendOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Destroy expired stacks: old ephemeral ones and any past its TTL (for CI).

    Exits 1 when a stack could not be cleaned.
    """
    from skyward.infra.registry import collect, parse_duration

    with _errors():
        try:
            limit = parse_duration(older_than)
        except ValueError as exc:
            raise ConfigurationError(f"--older-than: {exc}") from None
        report = collect(make_engine(backend), limit, dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(report.__dict__, indent=2))
    else:
        for stack in report.would_destroy:
            typer.echo(f"would destroy {stack} ({report.reasons[stack]})")
        for stack in report.destroyed:
            typer.echo(f"destroyed {stack} ({report.reasons[stack]})")
        for stack, operations in report.cleared.items():
            for operation in operations:
                typer.echo(
                    f"cleared pending operation of {stack}: {operation}; it may have "
                    "made a resource the state does not track: look for the tag "
                    f"skyward:pool={stack} in the console"
                )
        for stack, reason in report.failed.items():
            _err(f"could not clean {stack}: {reason}")
        typer.echo(
            f"{len(report.destroyed)} destroyed, {len(report.would_destroy)} to "
            f"destroy, {len(report.kept)} kept, {len(report.failed)} failed"
        )
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


# -- the machine ------------------------------------------------------------


def _check_aws() -> tuple[bool, str]:
    from skyward.infra.providers.aws import AWS, check_credentials

    try:
        region = AWS().resolved_region()
        return True, check_credentials(region)
    except SkywardError as exc:
        return False, str(exc)


def _check_env(*names: str) -> tuple[bool, str]:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        return False, f"set {', '.join(missing)}"
    return True, f"{', '.join(names)} set"


def _check_backend(url: str) -> tuple[bool, str]:
    if url.startswith("file://"):
        path = Path(url.removeprefix("file://"))
        if path.is_dir() and os.access(path, os.W_OK):
            return True, f"{url} is a writable folder"
        return False, f"{url} is not a writable folder"
    if url.startswith("s3://"):
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        bucket = url.removeprefix("s3://").split("/", 1)[0].split("?", 1)[0]
        try:
            boto3.session.Session().client("s3").head_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            return False, f"{url}: {exc}"
        return True, f"{url} is reachable"
    return True, f"{url} (not checked: Pulumi checks it at the first operation)"


def doctor(backend: BackendOption = None) -> None:
    """Check the Pulumi CLI, each provider's credentials and the state backend.

    Exits 1 when the Pulumi CLI or the backend is not usable.
    """
    from skyward.infra.engine import EngineSettings, find_pulumi

    checks: list[tuple[str, bool, str, bool]] = []
    try:
        exe = find_pulumi()
        version = subprocess.run(
            [str(exe), "version"], capture_output=True, text=True, timeout=60
        ).stdout.strip()
        checks.append(("pulumi CLI", True, f"{exe} {version}", True))
    except PulumiNotFoundError as exc:
        checks.append(("pulumi CLI", False, str(exc), True))
    checks.append(("aws credentials", *_check_aws(), False))
    checks.append(
        (
            "verda credentials",
            *_check_env("VERDA_CLIENT_ID", "VERDA_CLIENT_SECRET"),
            False,
        )
    )
    checks.append(("vastai credentials", *_check_env("VAST_API_KEY"), False))
    settings = EngineSettings.load(backend)
    checks.append(("state backend", *_check_backend(settings.backend), True))
    failed = False
    for label, ok, detail, required in checks:
        mark = "ok  " if ok else ("FAIL" if required else "warn")
        typer.echo(f"[{mark}] {label}: {detail}")
        failed = failed or (required and not ok)
    if failed:
        raise typer.Exit(EXIT_FAILED)


def install_pulumi(
    version: Annotated[
        str | None, typer.Option(help="Pulumi version (default: the SDK's own).")
    ] = None,
    root: Annotated[
        Path, typer.Option(help="Where to install (the CLI goes in ROOT/bin).")
    ] = Path("~/.pulumi"),
) -> None:
    """Install the Pulumi CLI with the SDK's PulumiCommand.install (downloads it)."""
    from pulumi.automation import PulumiCommand
    from semver import VersionInfo

    target = root.expanduser()
    try:
        command = PulumiCommand.install(
            root=str(target),
            version=VersionInfo.parse(version.lstrip("v")) if version else None,
        )
    except Exception as exc:
        _err(f"Error: could not install the Pulumi CLI into {target}: {exc}")
        raise typer.Exit(EXIT_FAILED) from None
    typer.echo(f"Installed pulumi {command.version} in {target / 'bin'}.")
    if str(target / "bin") not in os.environ.get("PATH", "").split(os.pathsep):
        typer.echo(
            f"Skyward finds it there; add {target / 'bin'} to PATH for your shell."
        )


def register(app: typer.Typer) -> None:
    """Add the stack commands to the ``skyward`` command group."""
    app.command()(plan)
    app.command()(preview)
    app.command()(ls)
    app.command()(down)
    app.command()(gc)
    app.command()(doctor)
    app.command("install-pulumi")(install_pulumi)


__all__ = ["build_pool", "make_engine", "parse_volume", "register"]
