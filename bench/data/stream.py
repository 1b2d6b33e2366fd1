"""Training batches streamed from image files: DataLoader workers, bounded memory, exact resume.

Decoding a whole training set into float32 costs tens of GB for Rain13K (and again in every
process of a multi-GPU run). A :class:`BatchSource` keeps only file names and header sizes in
the main process; worker processes decode on demand, cut the patch from the integer pixels and
convert only the patch (``bench.data.base.read_pixels``), optionally keeping decoded images in a
per-worker LRU cache with a byte budget.

Determinism: every random draw happens in the main process, in the DataLoader's sampler, with
the same generator calls as ``PatchSampler`` (``draw_crops``), so both draw the same patches,
bit for bit, for the same seed and images. Workers only decode and cut. Because prefetching
runs the generator ahead of the training loop, each batch carries the generator state that
follows it, and ``state_dict`` reports the state after the last batch *consumed*: a run resumed
from a checkpoint draws the same next batch with any number of workers and any prefetch depth.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from bench.data.base import Pair, PairedSet, pixels_to_tensor, read_pixels
from bench.data.patches import PAPER_BATCH, PAPER_PATCH, Crop, check_patch, draw_crops, flip, pair_sizes
from bench.errors import BenchError, DataError

#: Decoded-image cache per worker process (per process: with 4 workers up to 4x this). 1 GiB holds
#: all of Dense-Haze's 45 training pairs (1600x1200, 0.5 GiB as uint8) or LOL's 485 (0.7 GiB).
DEFAULT_CACHE_BYTES = 1 << 30
#: Below this many pairs a job uses no workers by default: spawning them costs seconds.
SMALL_SET = 64

Plan = tuple[int, tuple[Crop, ...]]


class PixelCache:
    """Least-recently-used decoded images (integer pixels and their scale), bounded in bytes."""

    def __init__(self, budget: int):
        self.budget, self.used = max(0, int(budget)), 0
        self._items: OrderedDict[str, tuple[np.ndarray, float]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, path: str) -> tuple[np.ndarray, float]:
        hit = self._items.get(path)
        if hit is not None:
            self._items.move_to_end(path)
            self.hits += 1
            return hit
        self.misses += 1
        pixels = read_pixels(Path(path))
        size = pixels[0].nbytes
        if size <= self.budget:
            while self.used + size > self.budget:
                _, (old, _) = self._items.popitem(last=False)
                self.used -= old.nbytes
            self._items[path] = pixels
            self.used += size
        return pixels


class PatchDataset(Dataset):
    """Cuts the patches of one planned batch from image files; no randomness, picklable for ``spawn``."""

    def __init__(self, degraded: Sequence[Path], clear: Sequence[Path], patch: int, cache_bytes: int):
        self.degraded = [str(p) for p in degraded]
        self.clear = [str(p) for p in clear]
        self.patch = patch
        self.cache = PixelCache(cache_bytes)

    def __len__(self) -> int:
        return len(self.degraded)

    def _patch(self, path: str, c: Crop) -> tuple[torch.Tensor, tuple[int, ...]]:
        pixels, scale = self.cache.get(path)
        p = self.patch
        return flip(pixels_to_tensor(pixels[c.top:c.top + p, c.left:c.left + p], scale), c), pixels.shape[:2]

    def __getitem__(self, plan: Plan) -> Any:  # type: ignore[override]
        serial, crops = plan
        try:
            degs, clrs = [], []
            for c in crops:
                d, dshape = self._patch(self.degraded[c.index], c)
                cl, cshape = self._patch(self.clear[c.index], c)
                if dshape != cshape:
                    raise DataError(f"Training pair {c.index}: {self.degraded[c.index]} decodes to {dshape} but "
                                    f"{self.clear[c.index]} to {cshape}.",
                                    fix="Run 'bench data verify' on the data set.")
                degs.append(d)
                clrs.append(cl)
            return serial, torch.stack(degs), torch.stack(clrs)
        except BenchError as e:  # re-raised in the main process as itself (DataLoader would wrap it in a traceback)
            return {"error": (type(e), e.message, e.fix, e.doc)}


class PlanSampler(Sampler):
    """Endless batch plans drawn in the main process; remembers the generator state after each one."""

    def __init__(self, gen: torch.Generator, sizes: list[tuple[int, int]], patch: int, batch: int):
        self.gen, self.sizes, self.patch, self.batch = gen, sizes, patch, batch
        self.serial = 0
        self.after: dict[int, torch.Tensor] = {}  # serial -> generator state once that batch was drawn

    def __iter__(self) -> Iterator[Plan]:
        while True:
            crops = tuple(draw_crops(self.gen, self.sizes, self.patch, self.batch))
            self.serial += 1
            self.after[self.serial] = self.gen.get_state()
            yield self.serial, crops


def _worker_init(worker_id: int) -> None:
    """Same settings in every worker: one thread each, fixed seeds (no worker draws anything anyway)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


class BatchSource:
    """``next_batch() -> (degraded, clear)``, N x 3 x p x p float32, through a DataLoader.

    The training loop's interface of ``PatchSampler`` (``next_batch``, ``state_dict``,
    ``load_state_dict``, ``len``), plus ``close()``, which stops the workers. ``workers=0``
    decodes in the main process (no start-up cost; the smoke profile's choice).
    """

    def __init__(self, pairs: Sequence[Pair], patch: int = PAPER_PATCH, batch: int = PAPER_BATCH, seed: int = 0, *,
                 workers: int = 0, pin_memory: bool = False, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 prefetch: int = 2, context: str | None = None):
        if workers < 0 or prefetch < 1:
            raise DataError(f"Workers must be >= 0 and prefetch >= 1, got workers={workers}, prefetch={prefetch}.")
        self.sizes = pair_sizes(pairs)
        check_patch(self.sizes, patch, batch)
        self.patch, self.batch, self.workers, self.prefetch = patch, batch, workers, prefetch
        self.pin_memory = bool(pin_memory and torch.cuda.is_available())
        self.context = context
        self.dataset = PatchDataset([p.degraded for p in pairs], [p.clear for p in pairs if p.clear is not None],
                                    patch, cache_bytes)
        self.gen = torch.Generator().manual_seed(seed)
        self._consumed = self.gen.get_state()
        self._sampler: PlanSampler | None = None
        self._it: Iterator[Any] | None = None

    def __len__(self) -> int:
        return len(self.sizes)

    def _start(self) -> None:
        self.gen.set_state(self._consumed)
        self._sampler = PlanSampler(self.gen, self.sizes, self.patch, self.batch)
        loader = DataLoader(
            self.dataset, batch_size=None, sampler=self._sampler, num_workers=self.workers,
            pin_memory=self.pin_memory, worker_init_fn=_worker_init if self.workers else None,
            prefetch_factor=self.prefetch if self.workers else None, multiprocessing_context=self.context,
            generator=torch.Generator().manual_seed(0),  # else the iterator draws its base seed from torch's global RNG
        )
        self._it = iter(loader)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._it is None:
            self._start()
        out = next(self._it)  # type: ignore[arg-type]
        if isinstance(out, dict):
            etype, message, fix, doc = out["error"]
            self.close()
            raise etype(message, fix=fix, doc=doc)
        serial, deg, clr = out
        assert self._sampler is not None
        self._consumed = self._sampler.after.pop(serial)
        return deg, clr

    def state_dict(self) -> dict[str, Any]:
        """The generator state after the last batch consumed (the format ``PatchSampler`` writes)."""
        return {"gen": self._consumed.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue after the batch ``state`` was taken at; batches already prefetched are dropped."""
        self.close()
        self._consumed = state["gen"].clone()
        self.gen.set_state(self._consumed)

    def close(self) -> None:
        """Stop the workers; a later ``next_batch`` starts new ones and continues where consumption stopped."""
        it, self._it, self._sampler = self._it, None, None
        if it is not None:
            shutdown = getattr(it, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
        self.gen.set_state(self._consumed)

    def __enter__(self) -> BatchSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to stop
            self.close()


def default_workers(n_pairs: int, device: str) -> int:
    """Workers a training job should use: none on CPU or for small sets, else up to 4 (one core kept for the loop)."""
    if not str(device).startswith("cuda") or n_pairs < SMALL_SET:
        return 0
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def training_batches(pairs: PairedSet | Sequence[Pair], patch: int = PAPER_PATCH, batch: int = PAPER_BATCH,
                     seed: int = 0, workers: int = 0, pin_memory: bool = False,
                     cache_bytes: int = DEFAULT_CACHE_BYTES, prefetch: int = 2) -> BatchSource:
    """The training job's batch source: headers read now, pixels decoded by ``workers`` processes on demand.

    Draws exactly the patches ``PatchSampler`` draws for the same ``seed`` and pairs. ``cache_bytes``
    is per worker (or for the main process with ``workers=0``); 0 disables the cache.
    ``pin_memory`` takes effect only when CUDA is available.
    """
    items = pairs.pairs if isinstance(pairs, PairedSet) else list(pairs)
    return BatchSource(items, patch, batch, seed, workers=workers, pin_memory=pin_memory, cache_bytes=cache_bytes,
                       prefetch=prefetch)
