"""Load a diffusion prior from a local file, check its structure, and freeze it.

Nothing is downloaded: a missing file is a :class:`bench.errors.MissingFileError` that names
the file and where to put it. The model is built on the meta device and the checkpoint's
tensors are assigned into it, so a 2.2 GB prior is held in memory once, not twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError, MissingFileError
from bench.prior.adm import ADM256_UNCOND_KWARGS, ADMUNet, create_adm

DOC_SECTION = "Weights"
MANIFEST_ENTRY = "adm256_uncond"


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode and no gradients: a prior is a fixed function, never trained by a loss."""
    model.eval()
    model.requires_grad_(False)
    return model


def _state_dict_of(obj: Any, path: Path) -> Mapping[str, torch.Tensor]:
    """An official checkpoint is a bare state_dict; our checkpoints keep it under "model" or "state_dict"."""
    for key in ("model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BenchError(
            f"{path} does not hold a model state_dict.",
            fix="Point to a guided-diffusion checkpoint such as 256x256_diffusion_uncond.pt.",
            doc=DOC_SECTION,
        )
    return obj


def structure_mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Human-readable differences in keys and shapes between a model and a state_dict (empty = same)."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    out = [f"missing {k} {want[k]}" for k in want if k not in got]
    out += [f"unexpected {k} {got[k]}" for k in got if k not in want]
    out += [f"{k}: file {got[k]} vs model {want[k]}" for k in want if k in got and want[k] != got[k]]
    return out


def _resolve(path: str | Path) -> Path:
    """A file path, or a weights-manifest entry name (e.g. "adm256_uncond") located and verified."""
    p = Path(path)
    if p.is_file() or p.suffix or len(p.parts) > 1:
        return p
    from bench.weights import load_manifest, locate

    if str(path) in load_manifest():
        return locate(str(path))  # raises MissingFileError naming the file, the folders searched and the source
    return p


def load_prior(path: str | Path, *, device: str | torch.device | None = None, **create_adm_kwargs: Any) -> ADMUNet:
    """Load ``path`` strictly into ``create_adm(**kwargs)`` (default: the 256x256 uncond config), frozen.

    ``path`` is a local file, or the name of a weights-manifest entry. Raises MissingFileError
    when the file is absent and BenchError when its keys or shapes are not those of the
    requested architecture. ``device``: where the frozen model goes (default: CPU).
    """
    path = _resolve(path)
    if not path.is_file():
        raise MissingFileError(
            f"Diffusion prior weights '{path.name}' were not found at {path}.",
            fix=(
                f"Put '{path.name}' in <repo>/weights/ (or in $BENCH_WEIGHTS); the weights manifest "
                f"weights/manifest.toml lists it as entry '{MANIFEST_ENTRY}' with its source."
            ),
            doc=DOC_SECTION,
        )
    kwargs = dict(ADM256_UNCOND_KWARGS)
    if create_adm_kwargs:
        kwargs = dict(create_adm_kwargs)
    obj = torch.load(path, map_location="cpu", weights_only=True)
    state = _state_dict_of(obj, path)
    with torch.device("meta"):
        model = create_adm(**kwargs)
    diffs = structure_mismatch(model, state)
    if diffs:
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise BenchError(
            f"{path.name} does not match the ADM architecture {kwargs} ({shown}).",
            fix="Pass the create_model arguments the checkpoint was trained with, or use the right file.",
            doc=DOC_SECTION,
        )
    # cast to the dtypes the model expects (fp16 torso convs when use_fp16), as the official scripts do
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}
    state = {k: v.to(dtypes[k]) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    if device is not None:
        model.to(device)
    return freeze(model)
