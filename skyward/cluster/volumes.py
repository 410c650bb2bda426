"""S3 volumes on nodes, mounted with s3fs-fuse by the bootstrap.

On a cloud node the ``mount volumes`` step installs s3fs with apt when the
image has none and mounts each volume with the instance profile's
credentials (``iam_role=auto``; the AWS stack scopes that role to the
volumes' buckets). On Local the nodes are this machine: s3fs must already be
installed, the credentials are the client's (boto3's chain), handed to the
node over SSH stdin into a 0600 passwd file, and each mount path is mounted
once per pool for all its nodes. Local mounts are undone by
:func:`unmount_local` when the pool closes or fails.

s3fs runs in the foreground (``-f``) as a background job of the step's
shell, so the step can tell a mount that appeared in ``/proc/mounts`` from an
s3fs that exited (a missing bucket, refused credentials) and show its log.
Script generation is pure and tested without SSH.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from skyward.errors import ConfigurationError
from skyward.spec import S3Volume

log = logging.getLogger(__name__)

STEP_MOUNT = "mount volumes"
S3FS_PACKAGE = "s3fs"
# How long a started s3fs may take to show up in /proc/mounts.
MOUNT_WAIT_S = 30
_SUDO = 'SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"'


@dataclass(frozen=True)
class S3Credentials:
    """Keys for s3fs on Local; never shown in a repr or a command line."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)

    def stdin(self) -> bytes:
        """What the mount script reads: ``key:secret`` then the token line."""
        return f"{self.access_key}:{self.secret_key}\n{self.token or ''}\n".encode()


@dataclass(frozen=True)
class VolumePlan:
    """How one pool mounts its volumes, decided before anything is created."""

    volumes: tuple[S3Volume, ...]
    local: bool
    url: str = ""
    region: str = ""
    credentials: S3Credentials | None = None
    # Local mount paths that did not exist: removed again after unmounting.
    created: frozenset[str] = frozenset()
    # The mounts' source in /proc/mounts and in s3fs's command line: tells
    # this pool's mounts and s3fs processes from anyone else's.
    tag: str = field(default_factory=lambda: f"skyward-s3fs-{uuid.uuid4().hex[:12]}")

    def source(self, volume: S3Volume) -> str:
        """s3fs's ``bucket[:/prefix]`` for a volume."""
        prefix = volume.prefix.rstrip("/")
        return f"{volume.bucket}:/{prefix}" if prefix else volume.bucket

    def options(self, volume: S3Volume, passwd: str) -> str:
        opts = []
        if self.local:
            if passwd:
                opts.append(f"passwd_file={passwd}")
        else:
            opts.append("iam_role=auto")
        if self.url:
            opts += [f"url={self.url}", "use_path_request_style"]
        if self.region:
            opts.append(f"endpoint={self.region}")
        opts += [f"fsname={self.tag}", "dbglevel=err"]
        if volume.read_only:
            opts.append("ro")
        return ",".join(opts)


def describe(volume: S3Volume) -> str:
    return f"s3://{volume.bucket}/{volume.prefix}"


def mounts_escape(path: str) -> str:
    """A path as /proc/mounts writes it (octal escapes for blanks, backslash)."""
    for char, code in (("\\", "\\134"), (" ", "\\040"), ("\t", "\\011")):
        path = path.replace(char, code)
    return path.replace("\n", "\\012")


def mount_sources() -> dict[str, str]:
    """This machine's mount points (as /proc/mounts writes them) and sources."""
    try:
        text = Path("/proc/mounts").read_text()
    except OSError:
        return {}
    fields = (line.split() for line in text.splitlines())
    return {f[1]: f[0] for f in fields if len(f) > 1}


def is_mounted(path: str) -> bool:
    return mounts_escape(path) in mount_sources()


def plan_volumes(volumes: tuple[S3Volume, ...], *, local: bool) -> VolumePlan | None:
    """Check the volumes against where they will mount; None when there are none.

    Raises ConfigurationError before anything is created: one mount path
    twice, and on Local a machine without s3fs or /dev/fuse, a mount path
    that already has a mount or holds files, or no AWS credentials.
    """
    if not volumes:
        return None
    seen: set[str] = set()
    for volume in volumes:
        if volume.mount_path in seen:
            raise ConfigurationError(
                f"Two volumes mount at {volume.mount_path!r}; give each its own "
                "mount_path."
            )
        seen.add(volume.mount_path)
    url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
        "AWS_ENDPOINT_URL", ""
    )
    if not local:
        return VolumePlan(volumes=volumes, local=False, url=url)
    if shutil.which("s3fs") is None:
        raise ConfigurationError(
            "The pool mounts S3 volumes, which on Local needs s3fs-fuse on this "
            f"machine: install the Debian package {S3FS_PACKAGE!r} (`sudo apt-get "
            f"install {S3FS_PACKAGE}`) or drop volume=... from the pool."
        )
    if not os.path.exists("/dev/fuse"):
        raise ConfigurationError(
            "The pool mounts S3 volumes, which needs FUSE, and this machine has "
            "no /dev/fuse (in a container, run it with --device /dev/fuse)."
        )
    created = set()
    for volume in volumes:
        _check_local_mount_path(volume)
        if not os.path.exists(volume.mount_path):
            created.add(volume.mount_path)
    import boto3

    session = boto3.Session()
    found = session.get_credentials()
    if found is None:
        raise ConfigurationError(
            "The pool mounts S3 volumes on Local with this machine's AWS "
            "credentials, and boto3 found none: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run `aws configure`."
        )
    frozen = found.get_frozen_credentials()
    return VolumePlan(
        volumes=volumes,
        local=True,
        url=url,
        region=session.region_name or "",
        credentials=S3Credentials(frozen.access_key, frozen.secret_key, frozen.token),
        created=frozenset(created),
    )


def _check_local_mount_path(volume: S3Volume) -> None:
    path = volume.mount_path
    where = f"S3Volume(mount_path={path!r})"
    if is_mounted(path):
        raise ConfigurationError(
            f"{where}: something is already mounted there (another pool, or a "
            "leftover mount: `fusermount -u` it). Pick another mount_path."
        )
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ConfigurationError(f"{where} exists and is not a directory.")
    if os.path.isdir(path) and any(os.scandir(path)):
        raise ConfigurationError(
            f"{where} is a directory with files in it, which the mount would "
            "hide. Pick an empty or new directory."
        )


# Read by skyward/infra/providers/local_node.py, which cannot import this.
LOCAL_MOUNTS_FILE = ".skyward-mounts"


def mount_script(plan: VolumePlan, node: int) -> str:
    """The ``mount volumes`` step: mount every volume, check each is there."""
    lines = ["set -e"]
    passwd = ""
    if plan.local:
        lines.append('NODE_DIR="${SKYWARD_NODE_DIR:-$PWD}"')
        lines.append('LOGS="$NODE_DIR"')
        if plan.credentials is not None:
            # Keys arrive on stdin: never in a command line or the script.
            lines += [
                "IFS= read -r CRED",
                "IFS= read -r TOKEN || true",
                'if [ -n "$TOKEN" ]; then',
                # A passwd file has no room for a session token: s3fs reads
                # temporary credentials from its environment instead.
                '  AWS_ACCESS_KEY_ID="${CRED%%:*}"',
                '  AWS_SECRET_ACCESS_KEY="${CRED#*:}"',
                '  AWS_SESSION_TOKEN="$TOKEN"',
                "  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN",
                '  PASSWD=""',
                "else",
                '  PASSWD="$NODE_DIR/.passwd-s3fs"',
                '  (umask 077 && printf "%s\\n" "$CRED" > "$PASSWD")',
                "fi",
                "unset CRED TOKEN",
            ]
            passwd = "$PASSWD"
    else:
        lines += [
            _SUDO,
            'LOGS="$HOME/.skyward"',
            'mkdir -p "$LOGS"',
            "if ! command -v s3fs >/dev/null 2>&1; then",
            "  export DEBIAN_FRONTEND=noninteractive",
            "  $SUDO apt-get update -qq",
            "  $SUDO apt-get install -y -qq --no-install-recommends "
            f"{S3FS_PACKAGE} >/dev/null",
            "fi",
        ]
    lines += [
        "SETSID=''",
        "command -v setsid >/dev/null 2>&1 && SETSID=setsid",
        "mounted() {",
        '  MP="$1" awk \'$2 == ENVIRON["MP"] {f = 1} END {exit !f}\' /proc/mounts',
        "}",
    ]
    for index, volume in enumerate(plan.volumes):
        lines += _mount_one(plan, volume, index, node, passwd)
    return "\n".join(lines)


def _mount_one(
    plan: VolumePlan, volume: S3Volume, index: int, node: int, passwd: str
) -> list[str]:
    what = describe(volume)
    mode = "read-only" if volume.read_only else "read-write"
    # Options may hold $PASSWD: double quotes let it expand.
    options = plan.options(volume, passwd).replace('"', '\\"')
    lines = [
        f"M={shlex.quote(volume.mount_path)}",
        f"E={shlex.quote(mounts_escape(volume.mount_path))}",
        f'LOG="$LOGS/s3fs-{node}-{index}.log"',
        'if mounted "$E"; then',
    ]
    if plan.local:
        lines += [
            '  echo "$M already has a mount; pick another mount_path." >&2',
            "  exit 1",
        ]
    else:
        # A node kept from an earlier pool still has that pool's mount.
        lines.append('  fusermount -u "$M" 2>/dev/null || $SUDO umount "$M"')
    lines += [
        "fi",
        'if [ -e "$M" ] && [ ! -d "$M" ]; then',
        '  echo "$M exists and is not a directory." >&2; exit 1',
        "fi",
        'if [ -d "$M" ] && [ -n "$(ls -A "$M")" ]; then',
        '  echo "$M is not empty; the mount would hide its files." >&2; exit 1',
        "fi",
    ]
    if plan.local:
        lines.append('mkdir -p "$M"')
    else:
        lines += ['$SUDO mkdir -p "$M"', '$SUDO chown "$(id -u):$(id -g)" "$M"']
    lines += [
        ': > "$LOG"',
        f'$SETSID s3fs {shlex.quote(plan.source(volume))} "$M" -f -o "{options}" '
        '</dev/null >>"$LOG" 2>&1 &',
        "PID=$!",
        "WAITED=0",
        'until mounted "$E"; do',
        '  if ! kill -0 "$PID" 2>/dev/null; then',
        f'    echo "s3fs could not mount {what} at $M; its log:"',
        '    cat "$LOG"',
        "    exit 1",
        "  fi",
        "  WAITED=$((WAITED + 1))",
        f"  if [ $WAITED -ge {MOUNT_WAIT_S * 10} ]; then",
        f'    echo "{what} did not appear at $M within {MOUNT_WAIT_S} s; s3fs log:"',
        '    cat "$LOG"',
        '    kill "$PID" 2>/dev/null || true',
        "    exit 1",
        "  fi",
        "  sleep 0.1",
        "done",
    ]
    if plan.local:
        # The node server unmounts what is listed here when it stops, so a
        # client killed without a chance to clean up leaves no mount behind.
        lines.append(f'printf "%s\\n" "$M" >> "$NODE_DIR/{LOCAL_MOUNTS_FILE}"')
    lines.append(f'echo "mounted {what} at $M ({mode})"')
    return lines


def mount_hint(plan: VolumePlan) -> str:
    listing = ", ".join(
        f"{describe(v)} at {v.mount_path}" + (" (read-only)" if v.read_only else "")
        for v in plan.volumes
    )
    where = (
        "this machine's AWS credentials"
        if plan.local
        else "the node's instance profile"
    )
    endpoint = f" at {plan.url}" if plan.url else ""
    return (
        f"The pool mounts {listing}. Check that each bucket exists{endpoint} and "
        f"that {where} may read it (and write it, unless read_only=True)."
    )


def unmount_local(path: str) -> bool:
    """Unmount a FUSE mount on this machine; lazily if it is busy.

    True when ``path`` is no longer a mount point afterwards.
    """
    if not is_mounted(path):
        return True
    attempts = (
        ["fusermount", "-u"],
        ["fusermount3", "-u"],
        ["umount"],
        # Busy (a process still has a file open): detach it now, the
        # kernel finishes when the last file closes.
        ["fusermount", "-uz"],
        ["fusermount3", "-uz"],
        ["umount", "-l"],
    )
    errors = []
    for command in attempts:
        if shutil.which(command[0]) is None:
            continue
        result = subprocess.run(
            [*command, path], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 or not is_mounted(path):
            log.info("Unmounted %s", path)
            return True
        errors.append(f"{' '.join(command)}: {result.stderr.strip()}")
    log.warning("Could not unmount %s: %s", path, "; ".join(errors))
    return False


def release_local(plan: VolumePlan) -> list[str]:
    """Undo this pool's Local mounts; returns the paths that stay mounted.

    Only mounts and s3fs processes carrying the plan's tag are touched, so
    a pool refused a path in use never unmounts its owner's volume.
    """
    paths = [v.mount_path for v in plan.volumes]
    for path in paths:
        if mount_sources().get(mounts_escape(path)) == plan.tag:
            unmount_local(path)
    # An s3fs that had not mounted yet when the pool stopped, or one that
    # outlived its unmount.
    _stop_processes(plan.tag)
    stuck = []
    for path in paths:
        if mount_sources().get(mounts_escape(path)) == plan.tag and not (
            unmount_local(path)
        ):
            stuck.append(path)
        elif path in plan.created:
            try:
                os.rmdir(path)
            except OSError:
                log.debug("Left %s in place: not empty or already gone", path)
    return stuck


def _stop_processes(tag: str, grace: float = 3.0) -> None:
    option = f"fsname={tag}"
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "s3fs" and any(option in arg for arg in cmdline):
            found.append(proc)
    if not found:
        return
    # An unmounted s3fs exits by itself: give it a moment first.
    deadline = time.monotonic() + grace
    _, alive = psutil.wait_procs(found, timeout=grace / 2)
    for proc in alive:
        proc.terminate()
    _, alive = psutil.wait_procs(alive, timeout=max(0.1, deadline - time.monotonic()))
    for proc in alive:
        log.warning("s3fs %d did not stop; killing it", proc.pid)
        proc.kill()
