"""Load a diffusion prior from a local file, check its structure, and freeze it.

Nothing is downloaded: a missing file is a :class:`bench.errors.MissingFileError` that names
the file and where to put it. The model is built on the meta device and the checkpoint's
tensors are assigned into it, so a 2.2 GB prior is held in memory once, not twice.
"""

from __future__ import annotations

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


def _resolve(path: str | Path) -> Path:
    """A file path, or a weights-manifest entry name (e.g. "adm256_uncond") located and verified."""
    p = Path(path)
    if p.is_file() or p.suffix or len(p.parts) > 1:
        return p
    from bench.weights import load_manifest, locate

    if str(path) in load_manifest():
        return locate(str(path))  # raises MissingFileError naming the file, the folders searched and the source
    return p


def load_prior(path: str | Path, *, device: str | torch.device | None = None, expected_sha256: str = "",
               **create_adm_kwargs: Any) -> ADMUNet:
    """Load ``path`` strictly into ``create_adm(**kwargs)`` (default: the 256x256 uncond config), frozen.

    ``path`` is a local file, or the name of a weights-manifest entry. Every fault of the file
    (missing, truncated, not a state_dict, pickled module, another architecture) is one sentence
    (``bench.prior.ref``). ``expected_sha256``: the digest the job was keyed on; a file that
    changed since is refused. ``device``: where the frozen model goes (default: CPU).
    """
    from bench.prior.ref import check_architecture, read_state_dict

    path = _resolve(path)
    if not path.exists():
        raise MissingFileError(
            f"Diffusion prior weights '{path.name}' were not found at {path}.",
            fix=(
                f"Put '{path.name}' in <repo>/weights/ (or in $BENCH_WEIGHTS, or pass --prior PATH); the weights "
                f"manifest bench/weights_manifest.toml lists it as entry '{MANIFEST_ENTRY}' with its source."
            ),
            doc=DOC_SECTION,
        )
    if expected_sha256:
        from bench.weights import sha256_of

        got = sha256_of(path)
        if got != expected_sha256:
            raise BenchError(f"Prior file {path} changed since this job was planned (SHA-256 {got[:12]}..., the "
                             f"job was keyed on {expected_sha256[:12]}...).",
                             fix="Run 'bench run' again: it plans new jobs for the file as it is now.",
                             doc=DOC_SECTION)
    state, file_kwargs = read_state_dict(path)
    kwargs = dict(create_adm_kwargs or file_kwargs or ADM256_UNCOND_KWARGS)
    check_architecture(path, state, kwargs)
    with torch.device("meta"):
        model = create_adm(**kwargs)
    # cast to the dtypes the model expects (fp16 torso convs when use_fp16), as the official scripts do
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}
    state = {k: v.to(dtypes[k]) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    if device is not None:
        model.to(device)
    return freeze(model)


def random_prior(adm_kwargs: dict[str, Any], seed: int, device: str | torch.device | None = None) -> ADMUNet:
    """The architecture with seeded random weights, for rehearsals at the paper's shapes (``--prior random``).

    Built as guided-diffusion initialises it, except that the zero-initialised output layers get small
    random values too, so gradients flow through the whole prior as they would with real weights.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_adm(**adm_kwargs)
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() > 1 and not p.any():
                    p.normal_(0, 1e-3)
    if device is not None:
        model.to(device)
    return freeze(model)
