"""Content fingerprints: a data set or a weight file enters job keys by what it holds, never by its path.

A paired set's fingerprint is the SHA-256 over its sorted (id, relative file name, size, file
SHA-256) entries, so two paths to the same files (a symlink, another mount) give the same key and
any changed byte gives a new one. Hashing every byte is affordable because each file's digest is
remembered in the cache by (resolved path, size, mtime): Rain13K's ~27,000 files are read once,
later runs only stat them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from bench.data.base import PairedSet
from bench.data.cub import LabelledSet
from bench.paths import cache_dir

MEMO_FILE = "file-sha256.json"


class DigestMemo:
    """File SHA-256s remembered by (resolved path, size, mtime_ns); loaded once, saved once."""

    def __init__(self, path: Path | None = None):
        self.path = path or cache_dir() / MEMO_FILE
        self.table: dict[str, str] = {}
        self.dirty = False
        with contextlib.suppress(OSError, ValueError):
            self.table = json.loads(self.path.read_text())

    def digest(self, f: Path) -> tuple[int, str]:
        """(size, hex SHA-256) of ``f``."""
        st = f.stat()
        key = f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        hit = self.table.get(key)
        if hit is None:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
            hit = self.table[key] = h.hexdigest()
            self.dirty = True
        return st.st_size, hit

    def save(self) -> None:
        if not self.dirty:
            return
        from bench.io import remove_stale_temps, write_json

        with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash next time
            remove_stale_temps(self.path.parent)  # what a killed writer left (its process is gone)
            write_json(self.path, self.table)
        self.dirty = False


def _relative(f: Path, base: Path | None) -> str:
    if base is not None:
        with contextlib.suppress(ValueError):
            return f.resolve().relative_to(base.resolve()).as_posix()
    return f.name


def paired_set_fingerprint(pairs: PairedSet, base: Path | None = None, memo: DigestMemo | None = None) -> str:
    """SHA-256 over the set's name and every pair's (id, relative names, sizes, file digests)."""
    own = memo is None
    memo = memo or DigestMemo()
    h = hashlib.sha256(pairs.name.encode())
    for p in sorted(pairs.pairs, key=lambda p: p.id):
        h.update(b"\0" + p.id.encode())
        for f in (p.degraded, p.clear):
            if f is None:
                h.update(b"\0-")
                continue
            size, digest = memo.digest(f)
            h.update(f"\0{_relative(f, base)}\0{size}\0{digest}".encode())
    if own:
        memo.save()
    return h.hexdigest()


def labelled_set_fingerprint(images: LabelledSet, base: Path | None = None, memo: DigestMemo | None = None) -> str:
    """SHA-256 over a CUB split's name, class names and every image's (id, label, relative name, size, digest)."""
    own = memo is None
    memo = memo or DigestMemo()
    h = hashlib.sha256(f"{images.name}/{images.split}/{'|'.join(images.class_names)}".encode())
    for it in sorted(images.items, key=lambda i: i.id):
        size, digest = memo.digest(it.path)
        h.update(f"\0{it.id}\0{it.label}\0{_relative(it.path, base)}\0{size}\0{digest}".encode())
    if own:
        memo.save()
    return h.hexdigest()
