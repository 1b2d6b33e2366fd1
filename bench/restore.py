"""Apply a network to images: the one restore routine of evaluation, Table 2, Figure 7 and ``bench restore``.

Any size goes in: a network that declares ``size_multiple`` (ours do it inside ``Restorer.forward``;
a user's class may set the attribute) gets its input reflect-padded to a multiple and the output
cropped back, and the result is clamped to [0, 1] as the PNG it becomes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bench.data.base import read_image


def restore_tensor(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` for a 1 x 3 x H x W image in [0, 1] of any size, cropped back and clamped."""
    h, w = x.shape[-2:]
    m = int(getattr(model, "size_multiple", 1) or 1)
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:  # (our Restorers would also pad inside forward: padding twice to a multiple pads once)
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
    with torch.no_grad():
        y = model(x)
    if y.shape[-2:] != (h, w):
        y = y[..., :h, :w]
    return y.clamp(0, 1)


def restore_files(model: torch.nn.Module, items: Iterable[tuple[str, Path]], device: str,
                  ) -> Iterator[tuple[str, torch.Tensor, float]]:
    """(id, restored 1 x 3 x H x W tensor on ``device``, seconds) for each (id, degraded image file)."""
    for image_id, path in items:
        t0 = time.perf_counter()
        y = restore_tensor(model, read_image(path)[None].to(device))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        yield image_id, y, time.perf_counter() - t0


def check_input_folder(input_dir: Path) -> list[Path]:
    """The images of ``input_dir`` (sorted); one sentence for a missing, unreadable or empty folder, or a
    name under two extensions (their restored PNGs would overwrite each other)."""
    from bench.data.base import IMAGE_SUFFIXES
    from bench.errors import DataError

    if not input_dir.is_dir():
        what = "is a file, not a folder" if input_dir.exists() else "does not exist"
        raise DataError(f"Input folder {input_dir} {what}.", fix="Pass a folder of images with --input.")
    try:
        files = sorted(p for p in input_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.name.startswith("."))
    except PermissionError:
        raise DataError(f"Input folder {input_dir} cannot be read (permission denied).",
                        fix="Fix its permissions, or pass another folder with --input.") from None
    if not files:
        raise DataError(f"Input folder {input_dir} holds no images ({', '.join(IMAGE_SUFFIXES)}).",
                        fix="Point --input at a folder of .png / .jpg images.")
    stems = [p.stem for p in files]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise DataError(f"{len(twice)} image name(s) occur with two extensions in {input_dir}, first '{twice[0]}'.",
                        fix="Keep one file per name: the restored PNGs would overwrite each other.")
    return files


def restore_folder(model: torch.nn.Module, input_dir: Path, out_dir: Path, device: str,
                   progress: Any = None) -> list[dict[str, Any]]:
    """Restore every image of ``input_dir`` into ``out_dir`` as ``<name>.png`` (any size); one row per image."""
    from bench.data.base import write_png

    files = check_input_folder(input_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.to(device).eval()
    rows = []
    task = progress.add_task("restore images", total=len(files)) if progress is not None else None
    for image_id, y, seconds in restore_files(model, [(p.stem, p) for p in files], device):
        write_png(out_dir / f"{image_id}.png", y[0].cpu())
        rows.append({"image_id": image_id, "height": int(y.shape[-2]), "width": int(y.shape[-1]),
                     "seconds": round(seconds, 4)})
        if task is not None:
            progress.advance(task)
    return rows


def load_trained(store: Any, run: str | None, weights: Path | None, baseline: str | None,
                 ) -> tuple[torch.nn.Module, str]:
    """(network with its trained weights, what it is) from a train job's key or a weights file."""
    from bench import build_baseline
    from bench.errors import BenchError

    if run is not None:
        matches = [d.name for d in store.root.glob(f"{run}*") if d.is_dir()] if store.root.is_dir() else []
        if len(matches) != 1:
            raise BenchError(f"No single job in {store.root} has a key starting with '{run}' "
                             f"({len(matches)} match).", fix="Copy the key from bench status (16 hex digits).")
        job = store.load_job(matches[0])
        if job.kind != "train":
            raise BenchError(f"Job {job.describe()} is a '{job.kind}' job, not a train job.",
                             fix="Give the key of a train job (bench status lists them).")
        if store.status(job) != "done":
            raise BenchError(f"Train job {job.describe()} has not finished.", fix="Run its table first (bench run).")
        baseline, weights = job.config["baseline"], store.artifact(job, "model")
        kwargs = job.config.get("baseline_kwargs", {})
        what = f"{job.describe()} ({job.key})"
    else:
        kwargs, what = {}, f"{baseline} from {weights}"
    assert baseline is not None and weights is not None
    model = build_baseline(baseline, **kwargs)
    if not Path(weights).is_file():
        what = "is a folder, not a file" if Path(weights).is_dir() else "does not exist"
        raise BenchError(f"Weights file {weights} {what}.", fix="Pass a state_dict file (a train job's model.pt).")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        first = str(e).splitlines()[0].split(". ")[0][:120] if str(e) else type(e).__name__
        raise BenchError(f"Weights file {weights} cannot be read ({first}): truncated, or not a PyTorch file.",
                         fix="Pass an intact state_dict file (a train job's model.pt).") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BenchError(f"Weights file {weights} holds no state_dict (found {type(state).__name__}).",
                         fix="Pass the network's state_dict (torch.save(model.state_dict(), path)).")
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    wrong = [f"missing '{k}'" for k in want if k not in got] + [f"unexpected '{k}'" for k in got if k not in want] + [
        f"'{k}' is {got[k]}, not {want[k]}" for k in want if k in got and got[k] != want[k]]
    if wrong:
        raise BenchError(f"Weights file {weights} is not {baseline}'s state_dict ({len(wrong)} difference(s) in "
                         f"its {len(want)} tensors, first: {wrong[0]}).",
                         fix="Pass the weights trained for this network, or the matching --baseline.")
    model.load_state_dict(state, strict=True)
    return model, what
