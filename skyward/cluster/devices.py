"""GPUs and MIG devices on a node, read from ``nvidia-smi``.

The bootstrap runs the commands built here on a node and hands their output
to the parsers; nothing in this module talks to a node itself, so the
commands and the slot-to-device mapping are tested from recorded output.

    layout ["3g.40gb", "3g.40gb"] on 1 GPU
      -> nvidia-smi mig -i 0 -cgi 3g.40gb,3g.40gb -C
      -> nvidia-smi -L lists MIG-<uuid-a>, MIG-<uuid-b>
      -> slot 0: CUDA_VISIBLE_DEVICES=MIG-<uuid-a>, slot 1: MIG-<uuid-b>
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass

from skyward.spec.accelerators import AcceleratorSpec, gpu_model_for

log = logging.getLogger(__name__)

GPU_QUERY = (
    "nvidia-smi --query-gpu=index,name,uuid,memory.total --format=csv,noheader,nounits"
)
_SUDO = 'SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"'
_GPU_LINE = re.compile(r"^GPU\s+(\d+):\s+(.+?)\s+\(UUID:\s*(GPU-[^)]+)\)")
_MIG_LINE = re.compile(
    r"^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s+\(UUID:\s*(MIG-[^)]+)\)", re.IGNORECASE
)


@dataclass(frozen=True)
class Gpu:
    """One physical GPU as ``nvidia-smi`` reports it."""

    index: int
    name: str
    uuid: str
    memory_gb: float

    @property
    def model(self) -> str:
        """The catalog name (``A100-80GB``), or the driver's name if unknown."""
        found = gpu_model_for(self.name, self.memory_gb)
        return found.name if found else self.name


@dataclass(frozen=True)
class MigDevice:
    """One MIG instance: the GPU it lives on, its profile and its UUID."""

    gpu: int
    profile: str
    device: int
    uuid: str


def parse_gpu_query(text: str) -> list[Gpu]:
    """Parse the CSV that :data:`GPU_QUERY` prints (memory in MiB)."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        try:
            memory_gb = round(float(parts[3]) / 1024, 1)
        except ValueError:
            memory_gb = 0.0
        gpus.append(Gpu(int(parts[0]), parts[1], parts[2], memory_gb))
    return gpus


def parse_mig_listing(text: str) -> list[MigDevice]:
    """The MIG devices in ``nvidia-smi -L`` output, in listing order."""
    devices: list[MigDevice] = []
    gpu = -1
    for line in text.splitlines():
        if match := _GPU_LINE.match(line):
            gpu = int(match.group(1))
        elif (match := _MIG_LINE.match(line)) and gpu >= 0:
            devices.append(
                MigDevice(gpu, match.group(1), int(match.group(2)), match.group(3))
            )
    return devices


def mig_script(accel: AcceleratorSpec) -> str:
    """Shell that enables MIG on the node's GPUs and creates ``accel.mig``.

    Existing MIG instances are destroyed first so that a node reused by a
    named pool ends with exactly the layout asked for. Prints ``nvidia-smi
    -L`` last, for :func:`parse_mig_listing`.
    """
    profiles = ",".join(accel.mig)
    lines = ["set -e", _SUDO]
    for gpu in range(accel.count):
        mode = f"nvidia-smi -i {gpu} --query-gpu=mig.mode.current --format=csv,noheader"
        lines += [
            f'if [ "$({mode})" != "Enabled" ]; then',
            f"  $SUDO nvidia-smi -i {gpu} -mig 1",
            f'  if [ "$({mode})" != "Enabled" ]; then $SUDO nvidia-smi -i {gpu} -r; fi',
            "fi",
            f"$SUDO nvidia-smi mig -i {gpu} -dci >/dev/null 2>&1 || true",
            f"$SUDO nvidia-smi mig -i {gpu} -dgi >/dev/null 2>&1 || true",
            f"$SUDO nvidia-smi mig -i {gpu} -cgi {shlex.quote(profiles)} -C",
        ]
    lines.append("nvidia-smi -L")
    return "\n".join(lines) + "\n"


def assign_mig_slots(
    devices: list[MigDevice], accel: AcceleratorSpec
) -> list[MigDevice]:
    """One MIG device per worker slot: slot ``i`` gets the ``i``-th device.

    Devices are ordered by GPU, then by device number. Raises ValueError
    naming what is missing when the node's devices do not match the layout.
    """
    ordered = sorted(devices, key=lambda d: (d.gpu, d.device))
    slots: list[MigDevice] = []
    for gpu in range(accel.count):
        on_gpu = [d for d in ordered if d.gpu == gpu]
        wanted = sorted(p.lower() for p in accel.mig)
        found = sorted(d.profile.lower() for d in on_gpu)
        if found != wanted:
            raise ValueError(
                f"GPU {gpu} has MIG devices {found or 'none'}, but the layout "
                f"asks for {wanted}"
            )
        slots.extend(on_gpu)
    return slots


def local_gpus() -> list[Gpu]:
    """The GPUs of this machine; empty where there is no ``nvidia-smi``."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, *GPU_QUERY.split()[1:]],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("nvidia-smi failed here: %s", exc)
        return []
    return parse_gpu_query(out)


def local_has(accel: AcceleratorSpec) -> bool:
    """Whether this machine has ``accel.count`` GPUs of ``accel``'s model."""
    return sum(g.model == accel.name for g in local_gpus()) >= accel.count
