"""Atomic file writes: a result exists whole or not at all.

Every writer goes to a temporary name in the same directory, fsyncs, then renames,
so a killed run never leaves a half-written CSV, checkpoint or ``done.json``. The temporary
name says who wrote it (``.<name>.<host id>-<pid>.<random>.tmp``), so a later run can tell the
leftovers of a killed writer from another live process's write and remove them
(:func:`remove_stale_temps`). A write that fails for lack of space raises
:class:`bench.errors.DiskFull`: one sentence with the file, the free space and what to clean or move.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.errors import BenchError, DiskFull
from bench.faults import fault_point

_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[^.]+\.tmp$")
#: Folders whose owner the disk-full message names: (folder, what it holds, how to move it).
_LOCATIONS: dict[str, tuple[str, str]] = {}
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def name_location(folder: Path, what: str, option: str) -> None:
    """Say what ``folder`` holds and which option moves it, for the disk-full message of a write under it."""
    _LOCATIONS[str(Path(folder).absolute())] = (what, option)


def _owner() -> str:
    return f"{_HOST}-{os.getpid()}"


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def free_space(folder: Path) -> int | None:
    """Bytes free for this user on the file system holding ``folder`` (its nearest existing parent)."""
    p = Path(folder).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def disk_full(path: Path) -> DiskFull:
    """The one-sentence error for a write of ``path`` that found no space."""
    from bench.paths import cache_dir

    path = Path(path).absolute()
    free = free_space(path.parent)
    places = {**{str(cache_dir().absolute()): ("cache", "BENCH_CACHE")}, **_LOCATIONS}
    under = [k for k in places if Path(k) == path or Path(k) in path.parents]
    root = max(under, key=len) if under else None
    folder = Path(root) if root else path.parent
    move = f" or move the {places[root][0]} to a larger disk with {places[root][1]}" if root else ""
    free_txt = "an unknown amount of space" if free is None else _human(free)
    return DiskFull(f"The disk is full: writing {path} failed with {free_txt} free on the file system of {folder}.",
                    fix=f"Free space there (for example old job folders under the runs folder){move}, then rerun "
                        "the same command: finished jobs are kept and the interrupted one resumes.")


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, DiskFull) or (isinstance(e, OSError) and e.errno in _NO_SPACE)


def _no_room_left(folder: Path) -> bool:
    """After a non-OSError failure (torch.save reports ENOSPC as a RuntimeError): can a small file still be written?"""
    probe = folder / f".diskprobe.{_owner()}.probe.tmp"
    try:
        with open(probe, "wb") as f:
            f.write(b"\0" * (64 << 10))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        return e.errno in _NO_SPACE
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return False


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename onto ``path``."""
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_owner()}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o644)  # mkstemp's 0600 would hide results from the other users of a shared runs folder
        fault_point("before_rename")
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
        fault_point("after_rename")
    except BenchError:
        raise
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise disk_full(path) from None
        raise
    except Exception:
        if tmp_path is not None and path.parent.is_dir() and _no_room_left(path.parent):
            raise disk_full(path) from None
        raise
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def stale_temps(folder: Path, recursive: bool = False, any_owner: bool = False) -> list[Path]:
    """Temporary files of :func:`atomic_path` in ``folder`` whose writer is gone.

    A writer is gone when it ran on this host and its process no longer exists; ``any_owner``
    (the caller holds the folder's lease, so nobody else writes there) counts every temporary
    file, whoever wrote it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    out = []
    for p in sorted(found):
        if not p.is_file():
            continue
        m = _TEMP.match(p.name)
        if any_owner or (m is not None and m["host"] == _HOST and _pid_gone(int(m["pid"]))):
            out.append(p)
    return out


def remove_stale_temps(folder: Path, recursive: bool = False, any_owner: bool = False) -> list[Path]:
    """Remove :func:`stale_temps` (what a killed writer left behind); return what was removed."""
    removed = []
    for p in stale_temps(folder, recursive, any_owner):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: Path, frame: Any) -> None:
    """Write a pandas DataFrame atomically (no index column)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def torch_save(path: Path, obj: Any) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
