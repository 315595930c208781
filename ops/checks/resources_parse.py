"""Parsers of the runbook's server commands in machine-readable form: `free -b`, `df -P -B1`,
`docker stats --no-stream --format '{{json .}}'` and `du -s -B1 <paths>`; plus sizes as Docker
and Compose write them ("1.5GiB", "512MiB", "8g")."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Binary units (Docker's MemUsage, compose's `memory: 8g`) and decimal ones (NetIO, BlockIO).
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tib": 1024**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[a-zA-Z]*)\s*$")


def parse_size(text: Any) -> int | None:
    """ "1.5GiB" / "512MiB" / "8g" / "10kB" / 1024 → bytes; None when it is not a size ("--")."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return int(text)
    match = _SIZE.match(str(text or ""))
    if not match:
        return None
    factor = _UNITS.get(match["unit"].lower())
    if factor is None:
        return None
    return int(float(match["number"]) * factor)


def parse_percent(text: Any) -> float | None:
    """ "12.34%" → 12.34; None for "--" or anything else Docker shows for a container it cannot
    measure (starting, being removed)."""
    try:
        return float(str(text).strip().rstrip("%"))
    except ValueError:
        return None


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole > 0 else 0.0


def parse_free(output: str) -> dict[str, Any] | None:
    """`free -b` → {total, used, available, used_percent, swap_total, swap_used} (bytes).

    "Used" is what applications hold: total - available when `free` has the available column
    (procps ≥ 3.3.10), else the "-/+ buffers/cache" line of older procps, else the used column
    (page cache counted as used). None when there is no "Mem:" line.
    """
    header: list[str] = []
    memory: list[int] = []
    swap: list[int] = []
    buffers_line: list[int] = []
    for line in output.splitlines():
        words = line.split()
        if not words:
            continue
        label = words[0].lower()
        numbers = [int(word) for word in words[1:] if word.isdigit()]
        if label == "total":
            header = [word.lower() for word in words]
        elif label == "mem:":
            memory = numbers
        elif label == "swap:":
            swap = numbers
        elif label == "-/+":
            buffers_line = [int(word) for word in words if word.isdigit()]
    if len(memory) < 2:
        return None
    total = memory[0]
    if "available" in header and len(memory) > header.index("available"):
        available = memory[header.index("available")]
        used = total - available
    elif len(buffers_line) >= 2:
        used, available = buffers_line[0], buffers_line[1]
    else:
        used = memory[1]
        available = total - used
    return {
        "total": total,
        "used": used,
        "available": available,
        "used_percent": percent(used, total),
        "swap_total": swap[0] if swap else 0,
        "swap_used": swap[1] if len(swap) > 1 else 0,
    }


_DF_LINE = re.compile(
    r"^(?P<fs>\S+)\s+(?P<size>\d+)\s+(?P<used>\d+)\s+(?P<available>\d+)\s+"
    r"(?P<capacity>\d+%|-)\s+(?P<mount>/.*)$"
)
# Not disks: memory file systems, container layers, snaps and kernel views.
_PSEUDO_FS = ("tmpfs", "devtmpfs", "overlay", "shm", "udev", "none", "efivarfs", "nsfs")
_PSEUDO_MOUNTS = ("/dev/", "/run/", "/sys/", "/proc/", "/snap/", "/var/lib/docker/", "/boot/efi")


def parse_df(output: str) -> list[dict[str, Any]]:
    """`df -P -B1` → [{filesystem, mount, size, used, available, used_percent}] for real disks.

    The percentage is df's own (used / (used + available), rounded up: root's reserved blocks
    count as full). Memory file systems, container overlays, loop-mounted snaps and empty
    pseudo file systems are left out; a mount point may contain spaces (`-P` keeps it last).
    """
    rows = []
    for line in output.splitlines():
        match = _DF_LINE.match(line.strip())
        if not match:
            continue
        fs, mount = match["fs"], match["mount"].rstrip()
        size, used, available = int(match["size"]), int(match["used"]), int(match["available"])
        pseudo_mount = mount.startswith(_PSEUDO_MOUNTS)
        if size == 0 or fs in _PSEUDO_FS or fs.startswith("/dev/loop") or pseudo_mount:
            continue
        usable = used + available
        rows.append(
            {
                "filesystem": fs,
                "mount": mount,
                "size": size,
                "used": used,
                "available": available,
                "used_percent": math.ceil(100 * used / usable) if usable else 0,
            }
        )
    return rows


def parse_docker_stats(output: str) -> list[dict[str, Any]]:
    """`docker stats --no-stream --format '{{json .}}'` → one row per container: name, cpu
    percent (100 = one core), memory used and Docker's limit (bytes), memory percent; None
    where Docker shows "--" (a container starting or going away). Lines that are not JSON
    objects (warnings) are skipped."""
    rows = []
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        name = str(data.get("Name") or data.get("Container") or "").lstrip("/")
        if not name:
            continue
        used_text, _, limit_text = str(data.get("MemUsage") or "").partition("/")
        rows.append(
            {
                "name": name,
                "cpu_percent": parse_percent(data.get("CPUPerc")),
                "memory_used": parse_size(used_text),
                "memory_limit_docker": parse_size(limit_text),
                "memory_percent_docker": parse_percent(data.get("MemPerc")),
                "pids": int(data["PIDs"]) if str(data.get("PIDs", "")).isdigit() else None,
            }
        )
    return rows


def parse_loadavg(output: str) -> dict[str, float] | None:
    """`cat /proc/loadavg` ("0.52 0.58 0.59 1/467 12345", among other lines) → load1/5/15."""
    for line in output.splitlines():
        match = _LOADAVG.match(line.strip())
        if match:
            return {"load1": float(match[1]), "load5": float(match[2]), "load15": float(match[3])}
    return None


_LOADAVG = re.compile(r"^(\d+\.\d+) (\d+\.\d+) (\d+\.\d+) \d+/\d+ \d+$")


def parse_du(output: str) -> list[dict[str, Any]]:
    """`du -s -B1 <dir>/*` → [{name, bytes}] where name is the path's last part (a Docker
    volume's name). `du`'s own files there (metadata.db, backingFsBlockDev) are included; the
    caller decides what a volume is."""
    rows = []
    for line in output.splitlines():
        size, _, path = line.partition("\t")
        if not path:
            size, _, path = line.strip().partition(" ")
        if not size.strip().isdigit() or not path.strip():
            continue
        name = path.strip().rstrip("/").rsplit("/", 1)[-1]
        rows.append({"name": name, "bytes": int(size.strip())})
    return rows
