"""Rows for ``bench ls <kind>``: what is registered, with the facts a user chooses by."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.errors import UnknownNameError

#: Spatial size at which ``bench ls baselines`` counts FLOPs (the paper's training patch).
FLOPS_SIZE = 256
BASELINE_HEADERS = ["name", "task", "params (M)", f"GFLOPs @{FLOPS_SIZE} (conv+matmul)", "official repo", "fidelity"]


NOT_CHECKED = "not checked here yet (bench check baselines)"


def _baselines(check: bool = False, names: list[str] | None = None) -> tuple[str, list[str], list[list[Any]]]:
    """One row per baseline. ``bench ls`` shows the last fixture verdict (cached) without running a proof;
    ``bench check baselines`` (``check=True``) runs each proof whose inputs changed since."""
    from bench.registry import BASELINES

    rows = []
    for name in names or BASELINES.names():
        meta = BASELINES.meta(name)
        facts = _baseline_facts(name) if check else _cached_facts(name)
        rows.append([name, meta.get("task", ""), f"{facts['params'] / 1e6:.3f}", facts["gflops"],
                     meta.get("repo", ""), facts["fidelity"]])
    title = (f"baselines (GFLOPs: one 1x3x{FLOPS_SIZE}x{FLOPS_SIZE} forward, torch FlopCounterMode, which counts "
             "convolutions and matrix products only)")
    return title, BASELINE_HEADERS, rows


def check_table(names: list[str] | None = None) -> tuple[str, list[str], list[list[Any]]]:
    """``bench check baselines``: every fixture proof run (or its verdict reused while nothing it reads changed)."""
    return _baselines(check=True, names=names)


def _cache_path(name: str) -> Path:
    from bench.paths import cache_dir

    return cache_dir() / "listing" / f"{name}-{_baseline_cache_key(name)}.json"


def _cached_facts(name: str) -> dict[str, Any]:
    """The cached verdict, or parameters and GFLOPs counted on the meta device (a second) and "not checked"."""
    path = _cache_path(name)
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    return {"params": _param_count(name), "gflops": _flops(name), "fidelity": NOT_CHECKED}


def _baseline_cache_key(name: str) -> str:
    """Hash of what a row depends on: the baseline's source, the shared code, torch and the fixture files."""
    import hashlib
    import inspect

    import torch

    from bench import fidelity
    from bench.registry import BASELINES

    cls = BASELINES.get(name)
    h = hashlib.sha256(f"{name}\0{torch.__version__}\0{FLOPS_SIZE}\0".encode())
    sources = {inspect.getsourcefile(cls), inspect.getsourcefile(fidelity),
               inspect.getsourcefile(_flops)}
    sources |= {inspect.getsourcefile(c) for c in cls.__mro__[1:] if c.__module__.startswith("baselines")}
    d = fidelity.fixture_dir(name)
    files = [Path(p) for p in sorted(s for s in sources if s)] + [d / "meta.json", d / "io.pt"]
    for f in files:
        h.update(str(f.name).encode() + b"\0" + (f.read_bytes() if f.is_file() else b"<absent>") + b"\0")
    return h.hexdigest()[:20]


def _baseline_facts(name: str) -> dict[str, Any]:
    """params, GFLOPs and fidelity label of ``name``, from ``cache_dir()/listing/`` when nothing changed.

    The fixture checks of all eight networks take 20-25 s on a busy 2-core CPU (84 s before they ran
    single-threaded), against ~7 s for a listing from the cache, so a verdict is kept, keyed by a
    hash of everything it depends on; a missing fixture is never cached.
    """
    from bench import io
    from bench.fidelity import NO_FIXTURE, check_fixture

    path = _cache_path(name)
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            pass  # a corrupt cache entry is recomputed
    result = check_fixture(name)
    facts = {"params": result.params if result.params is not None else _param_count(name),
             "gflops": _flops(name), "fidelity": result.label}
    if result.status != NO_FIXTURE:
        io.write_json(path, facts)
    return facts


def _param_count(name: str) -> int:
    import torch

    import bench

    with torch.device("meta"):  # shapes only: a second even for the largest network
        return sum(p.numel() for p in bench.build_baseline(name).parameters())


def _flops(name: str, size: int = FLOPS_SIZE) -> str:
    """Forward GFLOPs at ``size`` x ``size`` by torch's FlopCounterMode (counts conv/matmul only).

    Built and run on the meta device: shapes only, no arithmetic, so it takes a second even for
    the largest network (the counts equal a real CPU run's: checked for five of the eight).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import bench

    try:
        with torch.device("meta"):
            model = bench.build_baseline(name).eval()
            x = torch.zeros(1, 3, size, size)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        return f"{counter.get_total_flops() / 1e9:.1f}"
    except Exception as e:  # a network that cannot run on the meta device still gets listed
        return f"n/a ({type(e).__name__})"


def _registry(kind: str) -> tuple[str, list[str], list[list[Any]]]:
    from bench import registry

    reg = {"datasets": registry.DATASETS, "metrics": registry.METRICS, "losses": registry.LOSSES}[kind]
    rows = []
    for name in reg.names():
        meta = reg.meta(name)
        rows.append([name, ", ".join(f"{k}={v}" for k, v in meta.items() if k != "summary"), meta.get("summary", "")])
    return kind, ["name", "metadata", "summary"], rows


def _restorers() -> tuple[str, list[str], list[list[Any]]]:
    """Zero-shot restorers on the prior: what each costs per 256x256 patch step (prior forwards, no backward)."""
    from bench.registry import RESTORERS
    from bench.restorers.gdp import TASK_SETTINGS, gdp_cost

    rows = []
    for name in RESTORERS.names():
        import inspect

        doc = (inspect.getdoc(RESTORERS.get(name)) or "").splitlines()[0]
        lol = gdp_cost(400, 600, steps=1000)
        rows.append([name, doc, ", ".join(TASK_SETTINGS), f"{lol['forwards']:,} forwards / LOL image (1000 steps)",
                     "552.8M (the paper profile's prior)"])
    return "zero-shot restorers (bench.restorers)", ["name", "what", "tasks", "cost", "parameters at inference"], rows


def _jobs() -> tuple[str, list[str], list[list[Any]]]:
    from bench.graph.job import job_kinds

    return "job kinds", ["kind", "runner", "outputs"], [
        [k, f"{spec.run.__module__}.{spec.run.__name__}", ", ".join(f"{n}={a.path}" for n, a in spec.outputs.items())]
        for k, spec in job_kinds().items()]


def _profiles() -> tuple[str, list[str], list[list[Any]]]:
    from bench.config import PROFILES

    rows = [[p.name, p.prior, p.steps, p.batch, p.patch, p.lr, p.limit, p.is_reproduction] for p in PROFILES.values()]
    return "profiles", ["name", "prior", "steps", "batch", "patch", "lr", "limit", "reproduction"], rows


def table(kind: str) -> tuple[str, list[str], list[list[Any]]]:
    if kind == "baselines":
        return _baselines()
    if kind == "restorers":
        return _restorers()
    if kind in ("datasets", "metrics", "losses"):
        return _registry(kind)
    if kind == "jobs":
        return _jobs()
    if kind == "profiles":
        return _profiles()
    raise UnknownNameError(f"Nothing to list under '{kind}'.")
