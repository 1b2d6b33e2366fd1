"""Which diffusion prior a run uses, named once: the smoke prior job, a file, or random weights.

``--prior PATH`` (or ``BENCH_PRIOR``) names a file for any profile; without it the profile says
(``smoke``: the prior trained by a job; ``paper``: the manifest's ``256x256_diffusion_uncond.pt``).
A file enters every job that uses it through its SHA-256 and architecture, never its path.
Every way a file can be wrong (missing, truncated, not a state_dict, a pickled module, another
architecture or image size) is one sentence with its fix; nothing is ever unpickled
(``weights_only=True`` always).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError, MissingFileError

if TYPE_CHECKING:
    import torch

DOC = "Weights"
RANDOM = "random"


@dataclass(frozen=True)
class PriorRef:
    """A resolved prior: ``kind`` is ``smoke`` (a job trains it), ``file`` or ``random`` (rehearsals only)."""

    kind: str
    path: Path | None = None
    sha256: str = ""
    adm_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    @property
    def image_size(self) -> int | None:
        return self.adm_kwargs.get("image_size")

    def identity(self) -> dict[str, Any]:
        """What enters a job's key: the content (SHA-256) and architecture, never the path."""
        if self.kind == RANDOM:
            return {"kind": RANDOM, "seed": self.seed, "adm_kwargs": dict(self.adm_kwargs)}
        return {"kind": self.kind, "sha256": self.sha256, "adm_kwargs": dict(self.adm_kwargs)}

    def path_param(self) -> str | None:
        return str(self.path) if self.path is not None else None

    def describe(self) -> str:
        if self.kind == "file":
            return f"{self.path} (sha256 {self.sha256[:12]}..., {self.image_size}x{self.image_size})"
        return "random weights (rehearsal)" if self.kind == RANDOM else "smoke prior (trained by a job)"


def read_state_dict(path: Path) -> tuple[Mapping[str, Any], dict[str, Any] | None]:
    """(state_dict, adm_kwargs or None) of a prior file, memory-mapped; a clear error for each fault.

    Accepted: an official guided-diffusion checkpoint (a bare state_dict) or a bench prior file
    (``{"adm_kwargs": ..., "state_dict": ...}``, what the smoke prior job and rehearsal tests write).
    """
    import torch

    if not path.exists():
        raise MissingFileError(f"Prior file {path} does not exist.",
                               fix="Pass the path of 256x256_diffusion_uncond.pt with --prior (or BENCH_PRIOR), "
                                   "or put it in weights/.", doc=DOC)
    if path.is_dir():
        raise BenchError(f"Prior path {path} is a folder, not a checkpoint file.",
                         fix="Pass the .pt file itself, e.g. --prior weights/256x256_diffusion_uncond.pt.", doc=DOC)
    size = path.stat().st_size
    if size == 0:
        raise BenchError(f"Prior file {path} is empty (0 bytes).", fix="Download it again.", doc=DOC)
    if not zipfile.is_zipfile(path):
        raise BenchError(f"Prior file {path} ({size:,} bytes) is not a PyTorch checkpoint: a truncated download, "
                         "or another format.", fix="Download it again and compare its size and SHA-256 with "
                                                  "bench/weights_manifest.toml.", doc=DOC)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e) or "global" in str(e):
            raise BenchError(f"Prior file {path} holds a pickled Python object (such as a whole model), which bench "
                             "never unpickles.", fix="Save the model's state_dict instead: "
                             "torch.save(model.state_dict(), path).", doc=DOC) from None
        raise BenchError(f"Prior file {path} cannot be read as a checkpoint ({str(e).splitlines()[0]}).",
                         fix="Download it again.", doc=DOC) from None
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise BenchError(f"Prior file {path} ({size:,} bytes) is damaged or truncated "
                         f"({str(e).splitlines()[0][:120]}).", fix="Download it again and compare its size and "
                                                                   "SHA-256 with bench/weights_manifest.toml.",
                         doc=DOC) from None
    kwargs = None
    if isinstance(obj, Mapping) and isinstance(obj.get("adm_kwargs"), Mapping):
        kwargs = dict(obj["adm_kwargs"])
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BenchError(f"Prior file {path} does not hold a model state_dict (found {type(obj).__name__}).",
                         fix="Point to a guided-diffusion checkpoint such as 256x256_diffusion_uncond.pt.", doc=DOC)
    return obj, kwargs


def describe_architecture(state: Mapping[str, Any]) -> str:
    """A short guess at what a guided-diffusion-like state_dict is (image size, class-conditional, width)."""
    parts = []
    w = state.get("input_blocks.0.0.weight")
    if w is not None:
        parts.append(f"{w.shape[0]} base channels")
    n_in = len({k.split(".")[1] for k in state if k.startswith("input_blocks.")})
    if n_in:
        parts.append(f"{n_in} input blocks")
    if "label_emb.weight" in state:
        parts.append("class-conditional")
    out = state.get("out.2.weight")
    if out is not None:
        parts.append(f"{out.shape[0]} output channels")
    return ", ".join(parts) or "no guided-diffusion keys"


def structure_mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Human-readable differences in keys and shapes between a model and a state_dict (empty = same)."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    out = [f"missing {k} {want[k]}" for k in want if k not in got]
    out += [f"unexpected {k} {got[k]}" for k in got if k not in want]
    out += [f"{k}: file {got[k]} vs model {want[k]}" for k in want if k in got and want[k] != got[k]]
    return out


def check_architecture(path: Path, state: Mapping[str, Any], kwargs: dict[str, Any]) -> None:
    """Raise one sentence if ``state`` is not exactly ``create_adm(**kwargs)``'s keys and shapes."""
    import torch

    from bench.prior.adm import create_adm

    with torch.device("meta"):
        model = create_adm(**kwargs)
    diffs = structure_mismatch(model, state)
    if diffs:
        want = f"{kwargs['image_size']}x{kwargs['image_size']}" + (" class-conditional" if kwargs.get("class_cond")
                                                                  else " unconditional")
        raise BenchError(f"Prior file {path} is not the {want} ADM DiffLoss needs: it has "
                         f"{describe_architecture(state)} ({diffs[0]}; {len(diffs)} difference(s) in all).",
                         fix="Use guided-diffusion's 256x256_diffusion_uncond.pt (or a bench prior file that "
                             "records its adm_kwargs).", doc=DOC)


def file_ref(path: Path, default_kwargs: dict[str, Any] | None = None) -> PriorRef:
    """Check a prior file completely (structure, SHA-256) and return its reference."""
    from bench.prior.adm import ADM256_UNCOND_KWARGS
    from bench.weights import sha256_of

    path = Path(path).expanduser()
    state, kwargs = read_state_dict(path)
    kwargs = kwargs or dict(default_kwargs or ADM256_UNCOND_KWARGS)
    check_architecture(path, state, kwargs)
    return PriorRef("file", path, sha256_of(path), kwargs)


def resolve(choice: str | None, profile_prior: str, *, allow_random: bool = False) -> PriorRef:
    """The prior for ``--prior`` (or ``BENCH_PRIOR``) and the profile's default."""
    from bench.prior.adm import ADM256_UNCOND_KWARGS

    choice = choice or os.environ.get("BENCH_PRIOR") or None
    if choice == RANDOM:
        if not allow_random:
            raise BenchError("--prior random (random weights) is only allowed with --rehearse: it reproduces "
                             "nothing.", fix="Add --rehearse STEPS, or pass the real prior file.", doc=DOC)
        return PriorRef(RANDOM, adm_kwargs=dict(ADM256_UNCOND_KWARGS))
    if choice == "smoke" or (choice is None and profile_prior == "smoke"):
        return PriorRef("smoke")
    if choice is not None:
        return file_ref(Path(choice))
    from bench.weights import check, find, spec

    entry = spec(profile_prior)
    found = find(profile_prior)
    if found is None:
        from bench.paths import weights_search_path

        searched = ", ".join(str(d) for d in weights_search_path())
        raise MissingFileError(f"Prior file '{entry.file}' ({entry.name}) was not found in: {searched}.",
                               fix=f"Obtain it from {entry.source} and put it in one of those folders, or pass "
                                   "--prior PATH.", doc=DOC)
    check(entry, found)  # size and SHA-256 when the manifest knows them
    return file_ref(found, ADM256_UNCOND_KWARGS)
