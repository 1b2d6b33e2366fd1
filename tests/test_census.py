"""The bad-input census (issue 16.6): wrong inputs a user makes, each refused with one sentence and its fix.

Every case runs the real CLI entry point (``bench.cli.main``) in this process (the CLI's own start-up is
paid once) and must exit non-zero with exactly one ``Error:`` sentence and a ``Fix:``, no traceback, and
nothing lost: an existing runs folder and tables folder are byte for byte unchanged. Cases a user may
rightly expect to work (grayscale, EXIF rotation, palette, alpha, 16-bit grayscale) are accepted with
a note instead. Unreadable and unwritable paths are made so with permission bits; under root, whom
permission bits do not stop, the CLI call runs with the effective user ``nobody``.

Safety net: ``BENCH_FAULT=*:start:1:enospc`` makes any job that would start fail at once, so a case
that wrongly got through validation cannot train anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.cli import call_main
from support.tiny import write_user

NOBODY = 65534


class World:
    """A user's folder: an existing runs folder and tables folder that no case may change, and builders."""

    def __init__(self, root: Path):
        self.root = root
        self.runs, self.tables = root / "runs", root / "tables"
        job = self.runs / "0123456789abcdef"
        job.mkdir(parents=True)
        (job / "job.json").write_text('{"kind": "train"}\n')
        (job / "done.json").write_text('{"outputs": {}}\n')
        (job / "model.pt").write_bytes(os.urandom(256))
        self.tables.mkdir()
        (self.tables / "table1.md").write_text("# Table 1\n")
        self.open_runs = root / "open-runs"  # a runs folder 'nobody' may write (the unreadable-input cases)
        self.open_runs.mkdir(mode=0o777)
        os.chmod(self.open_runs, 0o777)
        self.n = 0

    def fresh(self, name: str) -> Path:
        self.n += 1
        p = self.root / f"c{self.n:03d}-{name}"
        p.mkdir()
        return p

    def image(self, path: Path, size: tuple[int, int] = (24, 20), mode: str = "RGB", seed: int = 0,
              fmt: str | None = None, **save: object) -> Path:
        rng = np.random.default_rng(seed)
        arr = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
        img = Image.fromarray(arr)
        if mode == "P":
            img = img.quantize(16)
        elif mode != "RGB":
            img = img.convert(mode)
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, format=fmt, **save)
        return path

    def folders(self, name: str, n: int = 2, **kw: object) -> tuple[Path, Path]:
        """pred/ and target/ with ``n`` paired RGB PNGs."""
        base = self.fresh(name)
        for i in range(n):
            self.image(base / "pred" / f"im{i}.png", seed=i, **kw)  # type: ignore[arg-type]
            self.image(base / "target" / f"im{i}.png", seed=10 + i, **kw)  # type: ignore[arg-type]
        return base / "pred", base / "target"

    def eval_args(self, pred: Path, target: Path, *extra: str) -> list[str]:
        return ["evaluate", "--pred", str(pred), "--target", str(target), "--dataset", "rain100h", "--out",
                str(pred.parent / "scores.csv"), "--device", "cpu", *extra]

    def csv(self, name: str, text: str | bytes) -> Path:
        p = self.fresh(name) / "per_image.csv"
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return p

    def state_dict(self, name: str, baseline: str = "iat", truncate: bool = False) -> Path:
        import torch

        from bench import build_baseline

        p = self.fresh(name) / "model.pt"
        torch.save(build_baseline(baseline).state_dict(), p)
        if truncate:
            data = p.read_bytes()
            p.write_bytes(data[: len(data) // 2])
        return p


def _snapshot(*folders: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for f in folders:
        for p in sorted(f.rglob("*")):
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir", p.stat().st_mode)
    return out


@contextlib.contextmanager
def _without_rights(enabled: bool) -> Iterator[None]:
    """Permission bits bind: as root, run as ``nobody`` for the block (the effective uid only, restored after)."""
    if not enabled or os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


def _bench(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
           no_rights: bool = False) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["bench", *argv])
    with _without_rights(no_rights):
        return call_main(capsys)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    # under /tmp with 0755 folders, so the unreadable-path cases can run as 'nobody' (pytest's tmp is 0700)
    root = Path(tempfile.mkdtemp(prefix="bench-census-"))
    os.chmod(root, 0o755)
    try:
        yield World(root)
    finally:
        for p in root.rglob("*"):
            with contextlib.suppress(OSError):
                os.chmod(p, 0o755 if p.is_dir() else 0o644)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def _env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(world.root)
    monkeypatch.setenv("BENCH_RUNS", str(world.runs))
    monkeypatch.setenv("BENCH_TABLES", str(world.tables))
    monkeypatch.setenv("BENCH_FAULT", "*:start:1:enospc")
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.delenv("BENCH_PRIOR", raising=False)


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[World], list[str]]
    expect: str  # a part of the one sentence (or, when accepted, of the note)
    accepted: bool = False  # the input is right after all: exit 0 with ``expect`` as a note
    no_rights: bool = False  # run as 'nobody' under root (unreadable / unwritable paths)


def _chmod(p: Path, mode: int) -> Path:
    os.chmod(p, mode)
    return p


def _file(w: World, name: str, data: bytes = b"x") -> Path:
    p = w.fresh(name) / name
    p.write_bytes(data)
    return p


def _exp(w: World, text: str) -> Path:
    d = w.fresh("exp")
    return write_user(d, text)


def _bomb(w: World) -> tuple[Path, Path]:
    """A 30000 x 30000 PNG header (900 M pixels, past Pillow's limit) in a few bytes: a decompression bomb."""
    pred, target = w.folders("bomb", n=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)) + chunk(
        b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    (pred / "im0.png").write_bytes(png)
    return pred, target


def _with(w: World, name: str, edit: Callable[[Path, Path], None], **kw: object) -> list[str]:
    pred, target = w.folders(name, **kw)
    edit(pred, target)
    return w.eval_args(pred, target)


def _exif_rotated(w: World) -> list[str]:
    """A JPEG stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to view), target upright."""
    base = w.fresh("exif")
    upright = (np.random.default_rng(3).random((20, 32, 3)) * 255).astype(np.uint8)  # 32 wide, 20 high
    (base / "pred").mkdir()
    (base / "target").mkdir()
    Image.fromarray(upright).save(base / "target" / "im0.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(upright, 1).copy()).save(base / "pred" / "im0.jpg", quality=95, exif=exif)
    return w.eval_args(base / "pred", base / "target")


def _cmyk(w: World) -> list[str]:
    pred, target = w.folders("cmyk", n=1)
    (pred / "im0.png").unlink()
    w.image(pred / "im0.jpg", mode="CMYK")
    return w.eval_args(pred, target)


def _real_lol(w: World) -> Path:
    """A data root whose LOL folder holds real data (no synth marker): synth must refuse before writing anything."""
    from bench.data.synth import FOLDERS

    root = w.fresh("synth-root")
    w.image(root / FOLDERS["lol"] / "our485" / "low" / "1.png")
    return root


def _csv_pair(w: World, name: str, a: str | bytes, b: str | None = None) -> list[str]:
    good = "image_id,psnr\nx,20.0\ny,21.0\n"
    return ["compare", str(w.csv(name + "-a", a)), str(w.csv(name + "-b", b if b is not None else good))]


def _restore(w: World, *extra: str, input_dir: Path | None = None) -> list[str]:
    if input_dir is None:
        input_dir = w.fresh("restore-in")
        w.image(input_dir / "a.png", size=(16, 16))
    return ["restore", "--input", str(input_dir), "--out", str(input_dir.parent / "restored"), "--device", "cpu",
            *extra]


def _weights_with_wrong_sha(w: World) -> list[str]:
    """LPIPS's linear-layer file present in $BENCH_WEIGHTS with the manifest's name but other bytes."""
    folder = w.fresh("weights")
    (folder / "lpips_v0.1_alex_lin.pth").write_bytes(b"\0" * 7065)  # the manifest's size, other bytes
    pred, target = w.folders("lpips", n=1, size=(64, 64))
    os.environ["BENCH_WEIGHTS"] = str(folder)  # restored by the test's monkeypatch (see test_census)
    return w.eval_args(pred, target, "--metrics", "lpips")


TINY = 'title = "t"\n[[row]]\nbaseline = "iat"\ntask = "dehazing"\nloss_sets = ["l2"]\n'
RUN = ["run", "--no-progress"]

CASES = [
    # ---- unknown names, each with "did you mean"
    Case("unknown profile", lambda w: [*RUN, "-t", "1", "--profile", "smok", "--dry-run"], "Did you mean 'smoke'?"),
    Case("unknown baseline", lambda w: [*RUN, "-t", "1", "--baseline", "iatt", "--dry-run"], "Did you mean 'iat'"),
    Case("unknown zero-shot restorer", lambda w: [*RUN, "-t", "1", "--baseline", "gdp_x1", "--dry-run"],
         "Did you mean 'gdp_x"),
    Case("unknown executor", lambda w: [*RUN, "-t", "1", "--executor", "pol"], "Did you mean 'pool'?"),
    Case("unknown device", lambda w: [*RUN, "-t", "1", "--device", "cdua"], "Did you mean 'cuda'?"),
    Case("unknown table", lambda w: [*RUN, "-t", "9"], "Unknown table 9."),
    Case("unknown figure", lambda w: [*RUN, "--figure", "3"], "Unknown figure 3."),
    Case("unknown command", lambda w: ["rnu"], "No such command 'rnu'"),
    Case("unknown option", lambda w: [*RUN, "-t", "1", "--stpes", "3"], "--steps"),
    Case("unknown listing", lambda w: ["ls", "baselinez"], "Did you mean 'baselines'?"),
    Case("unknown data set", lambda w: [*w.eval_args(*w.folders("ds"))[:6], "rain100", "--out", "o.csv"],
         "Did you mean 'rain100h'"),
    Case("unknown metric", lambda w: w.eval_args(*w.folders("metric"), "--metrics", "psnr,ssmi"),
         "Did you mean 'ssim'"),
    Case("unknown convention", lambda w: w.eval_args(*w.folders("conv"), "--convention", "y-pyiqa-rounde"),
         "Did you mean 'y-pyiqa-rounded'"),
    Case("unknown compare format", lambda w: [*_csv_pair(w, "fmt", "image_id,psnr\nx,1\ny,2\n"), "--format", "mdd"],
         "Did you mean 'md'"),
    Case("unknown data set to verify", lambda w: ["data", "verify", "rain100", "--root", str(w.fresh("v"))],
         "Did you mean 'rain100h'"),
    Case("unknown data set to synthesise", lambda w: ["data", "synth", "--root", str(w.root / "synth-new"), "--sets",
                                                      "rain100"], "Did you mean 'rain100h'"),
    Case("unknown baseline to check", lambda w: ["check", "baselines", "iatt"], "Did you mean 'iat'"),
    Case("unknown baseline to restore with", lambda w: _restore(w, "--weights", str(_file(w, "w.pt")), "--baseline",
                                                                 "iatt"), "Did you mean 'iat'"),
    Case("unknown run key", lambda w: _restore(w, "--run", "ffffffffffffffff"), "has a key starting with"),
    Case("unknown task in an experiment file", lambda w: [*RUN, "--experiment", str(_exp(w, TINY.replace(
        "dehazing", "dehazeing"))), "--dry-run"], "did you mean 'dehazing'"),
    Case("unknown id column", lambda w: [*_csv_pair(w, "idcol", "image_id,psnr\nx,1\ny,2\n"), "--id-column", "nme"],
         "nme"),
    # ---- paths: missing, empty, unreadable, unwritable, not a folder (or a folder where a file belongs)
    Case("missing data root", lambda w: [*RUN, "-t", "1", "--profile", "truncated", "--data-root",
                                         str(w.root / "nowhere")], "does not exist"),
    Case("data root is a file", lambda w: [*RUN, "-t", "1", "--profile", "truncated", "--data-root",
                                           str(_file(w, "data"))], "is a file, not a folder"),
    Case("unreadable data root", lambda w: [*RUN, "-t", "1", "--profile", "truncated", "--runs-dir", str(w.open_runs),
                                            "--data-root", str(_chmod(w.fresh("data"), 0o000)), "--dry-run"],
         "cannot be read",
         no_rights=True),
    Case("runs folder is a file", lambda w: [*RUN, "-t", "1", "--runs-dir", str(_file(w, "runs"))],
         "is a file, not a folder"),
    Case("unwritable runs folder", lambda w: [*RUN, "-t", "1", "--runs-dir", str(_chmod(w.fresh("ro"), 0o555))],
         "--runs-dir", no_rights=True),
    Case("tables folder is a file", lambda w: [*RUN, "-t", "1", "--tables-dir", str(_file(w, "tables"))],
         "is a file, not a folder"),
    Case("unwritable tables folder", lambda w: [*RUN, "-t", "1", "--runs-dir", str(w.open_runs), "--tables-dir",
                                                str(_chmod(w.fresh("ro"), 0o555))], "--tables-dir", no_rights=True),
    Case("missing experiment file", lambda w: [*RUN, "--experiment", str(w.root / "none.toml")], "does not exist"),
    Case("empty experiment file", lambda w: [*RUN, "--experiment", str(_file(w, "e.toml", b""))], "'title'"),
    Case("experiment file is a folder", lambda w: [*RUN, "--experiment", str(w.fresh("exp-dir"))],
         "is a folder, not a file"),
    Case("unreadable experiment file", lambda w: [*RUN, "--runs-dir", str(w.open_runs), "--experiment",
                                                  str(_chmod(_file(w, "e.toml", b"x"), 0)), "--dry-run"],
         "cannot be read",
         no_rights=True),
    Case("missing prior file", lambda w: [*RUN, "-t", "1", "--prior", str(w.root / "no.pt"), "--dry-run"],
         "does not exist"),
    Case("empty prior file", lambda w: [*RUN, "-t", "1", "--prior", str(_file(w, "p.pt", b"")), "--dry-run"],
         "is empty"),
    Case("prior is a folder", lambda w: [*RUN, "-t", "1", "--prior", str(w.fresh("prior")), "--dry-run"],
         "is a folder"),
    Case("missing restored folder", lambda w: w.eval_args(w.root / "nope", w.folders("t")[1]), "does not exist"),
    Case("empty restored folder", lambda w: w.eval_args(w.fresh("empty"), w.folders("t")[1]), "holds no images"),
    Case("restored folder is a file", lambda w: w.eval_args(_file(w, "pred"), w.folders("t")[1]),
         "is a file, not a folder"),
    Case("unreadable restored folder", lambda w: w.eval_args(_chmod(w.folders("ur")[0], 0o000), w.folders("t")[1]),
         "cannot be read", no_rights=True),
    Case("missing target folder", lambda w: w.eval_args(w.folders("p")[0], w.root / "nope"), "does not exist"),
    Case("--out is a folder", lambda w: [*w.eval_args(*w.folders("o"))[:-4], "--out", str(w.fresh("od")), "--device",
                                         "cpu"], "is a folder"),
    Case("unwritable --out folder", lambda w: [
        *w.eval_args(*w.folders("o"))[:-4], "--out", str(_chmod(w.fresh("ro"), 0o555) / "s.csv"), "--device", "cpu"],
         "cannot be created or written", no_rights=True),
    Case("missing result CSV", lambda w: ["compare", str(w.root / "a.csv"), str(w.csv("b", "image_id,psnr\nx,1\n"))],
         "does not exist"),
    Case("result CSV is a folder", lambda w: ["compare", str(w.fresh("a")), str(w.csv("b", "image_id,psnr\nx,1\n"))],
         "is a folder"),
    Case("unreadable result CSV", lambda w: ["compare", str(_chmod(w.csv("a", "image_id,psnr\nx,1\n"), 0)),
                                             str(w.csv("b", "image_id,psnr\nx,1\n"))], "cannot be read",
         no_rights=True),
    Case("missing restore input", lambda w: _restore(w, "--weights", str(w.state_dict("w")), "--baseline", "iat",
                                                     input_dir=w.root / "nope"), "does not exist"),
    Case("restore input is a file", lambda w: _restore(w, "--weights", str(w.state_dict("w")), "--baseline", "iat",
                                                       input_dir=_file(w, "in.png")), "is a file, not a folder"),
    Case("restore output not empty", lambda w: ["restore", "--input", str(w.folders("ri")[0]), "--out",
                                                str(w.folders("ro")[0]), "--weights", str(w.state_dict("w")),
                                                "--baseline", "iat"], "is not an empty folder"),
    Case("unwritable restore output", lambda w: [
        *_restore(w)[:3], "--out", str(_chmod(w.fresh("ro"), 0o555) / "new"), "--weights", str(w.state_dict("w2")),
        "--baseline", "iat", "--device", "cpu"], "cannot be written", no_rights=True),
    Case("missing data set root to verify", lambda w: ["data", "verify", "rain100h", "--root", str(w.root / "no")],
         "does not exist"),
    Case("synth over real data", lambda w: ["data", "synth", "--root", str(_real_lol(w)), "--sets", "dense_haze,lol"],
         "is not synthetic data"),
    # ---- images
    Case("corrupt image", lambda w: _with(w, "corrupt", lambda p, t: (p / "im0.png").write_bytes(os.urandom(300))),
         "cannot be decoded as an image"),
    Case("truncated image", lambda w: _with(w, "trunc", lambda p, t: (p / "im0.png").write_bytes(
        (p / "im0.png").read_bytes()[:200])), "cannot be decoded as an image"),
    Case("not an image", lambda w: _with(w, "text", lambda p, t: (p / "im0.png").write_text("id,psnr\n")),
         "cannot be decoded as an image"),
    Case("16-bit colour image", lambda w: _with(w, "rgb16", lambda p, t: _rgb16(p / "im0.png")),
         "16-bit colour image"),
    Case("sizes differ", lambda w: _with(w, "size", lambda p, t: w.image(p / "im0.png", size=(30, 20))),
         "differ in size"),
    Case("unpaired image", lambda w: _with(w, "unpaired", lambda p, t: (p / "im1.png").rename(p / "other.png")),
         "do not pair"),
    Case("one name under two extensions", lambda w: _with(w, "twice", lambda p, t: w.image(p / "im0.jpg")),
         "two extensions"),
    Case("decompression bomb", lambda w: w.eval_args(*_bomb(w)), "pixels"),
    Case("grayscale image (accepted)", lambda w: w.eval_args(*w.folders("gray", mode="L")), "grayscale",
         accepted=True),
    Case("RGBA image (accepted)", lambda w: w.eval_args(*w.folders("rgba", mode="RGBA")), "alpha", accepted=True),
    Case("palette image (accepted)", lambda w: w.eval_args(*w.folders("pal", mode="P")), "palette", accepted=True),
    Case("CMYK image (accepted)", _cmyk, "CMYK", accepted=True),
    Case("EXIF-rotated image (accepted)", _exif_rotated, "EXIF orientation", accepted=True),
    # ---- CSVs
    Case("empty CSV", lambda w: _csv_pair(w, "empty", ""), "not a readable CSV"),
    Case("binary CSV", lambda w: _csv_pair(w, "bin", os.urandom(200) + b"\xff\xfe"), "not a readable CSV"),
    Case("CSV without an id column", lambda w: _csv_pair(w, "noid", "psnr,ssim\n1,2\n3,4\n"), "id"),
    Case("CSV without metric columns", lambda w: _csv_pair(w, "nometric", "image_id,note\nx,a\ny,b\n"), "metric"),
    Case("CSV with duplicate ids", lambda w: _csv_pair(w, "dup", "image_id,psnr\nx,1\nx,2\n"), "more than once"),
    Case("CSV with NaN", lambda w: _csv_pair(w, "nan", "image_id,psnr\nx,nan\ny,2\n"), "not finite numbers, first nan"),
    Case("CSV with inf", lambda w: _csv_pair(w, "inf", "image_id,psnr\nx,inf\ny,2\n"), "not finite numbers, first inf"),
    # ---- weight files
    Case("missing weights file", lambda w: _restore(w, "--weights", str(w.root / "no.pt"), "--baseline", "iat"),
         "does not exist"),
    Case("truncated weights file", lambda w: _restore(w, "--weights", str(w.state_dict("t", truncate=True)),
                                                      "--baseline", "iat"), "cannot be read"),
    Case("weights of another network", lambda w: _restore(w, "--weights", str(w.state_dict("o", "efderain")),
                                                          "--baseline", "iat"), "is not iat's state_dict ("),
    Case("weights file with a wrong SHA-256", _weights_with_wrong_sha, "SHA-256"),
    Case("truncated prior file", lambda w: [*RUN, "-t", "1", "--prior", str(_file(w, "p.pt", b"PK\x03\x04" + b"0" *
                                                                                      100)), "--dry-run"],
         "not a PyTorch checkpoint"),
    # ---- numbers out of range
    Case("--limit 0", lambda w: [*RUN, "-t", "1", "--limit", "0"], "--limit"),
    Case("--seeds 0", lambda w: [*RUN, "-t", "1", "--seeds", "0"], "--seeds"),
    Case("--steps -1", lambda w: [*RUN, "-t", "1", "--steps", "-1"], "--steps"),
    Case("--classes 1", lambda w: [*RUN, "-t", "2", "--classes", "1"], "--classes"),
    Case("--batch 0", lambda w: [*RUN, "-t", "1", "--batch", "0"], "--batch"),
    Case("--workers 0", lambda w: [*RUN, "-t", "1", "--executor", "pool", "--workers", "0"], "--workers"),
    Case("--lr 0", lambda w: [*RUN, "-t", "1", "--lr", "0"], "--lr must be a positive finite learning rate"),
    Case("--lr nan", lambda w: [*RUN, "-t", "1", "--lr", "nan"], "--lr must be a positive finite learning rate"),
    Case("--zero-shot-steps 1", lambda w: [*RUN, "-t", "1", "--zero-shot-steps", "1"], "--zero-shot-steps"),
    Case("--rehearse 0", lambda w: [*RUN, "-t", "1", "--profile", "paper", "--rehearse", "0"], "--rehearse"),
    Case("--count 0 for synth", lambda w: ["data", "synth", "--root", str(w.root / "synth0"), "--count", "0"],
         "--count"),
    # ---- conflicting options
    Case("table and figure", lambda w: [*RUN, "-t", "1", "--figure", "7"], "Give exactly one of"),
    Case("--dry-run and --check", lambda w: [*RUN, "-t", "1", "--dry-run", "--check"], "give one of"),
    Case("--run and --weights", lambda w: _restore(w, "--run", "abc", "--weights", "w.pt"), "exactly one of"),
    Case("--weights without --baseline", lambda w: _restore(w, "--weights", "w.pt"), "needs --baseline"),
    Case("--classes on the smoke profile", lambda w: [*RUN, "-t", "2", "--classes", "5"], "--classes cuts real CUB"),
    Case("--rehearse without the paper profile", lambda w: [*RUN, "-t", "1", "--rehearse", "2"], "--rehearse"),
    Case("CSVs and folders to compare", lambda w: [*_csv_pair(w, "both", "image_id,psnr\nx,1\n"), "--pred-a", "x"],
         "not both"),
    Case("--prior-steps with a prior file", lambda w: [*RUN, "-t", "1", "--prior-steps", "5", "--prior",
                                                       str(w.state_dict("p")), "--dry-run"],
         "--prior-steps sets how long the smoke prior trains"),
    Case("--gpus without the pool executor", lambda w: [*RUN, "-t", "1", "--gpus", "0,1"], "--gpus"),
    Case("--workers without the pool executor", lambda w: [*RUN, "-t", "1", "--workers", "4"], "--workers"),
    Case("--slurm-* without the slurm executor", lambda w: [*RUN, "-t", "1", "--slurm-partition", "gpu"],
         "--slurm-partition"),
    Case("--baseline selecting no row", lambda w: [*RUN, "-t", "3", "--baseline", "gdp_x0", "--dry-run"],
         "selects no row"),
]


def _rgb16(path: Path) -> None:
    """A 48-bit RGB PNG (Pillow cannot write one, so the chunks are written here)."""
    w, h = 24, 20
    raw = b"".join(b"\0" + os.urandom(w * 6) for _ in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


RESULTS: list[tuple[str, int, str, bool]] = []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_wrong_input_is_one_sentence_and_loses_nothing(case: Case, world: World, capsys, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_WEIGHTS", os.environ.get("BENCH_WEIGHTS", ""))  # a case may point it elsewhere
    before = _snapshot(world.runs, world.tables)
    argv = case.argv(world)
    code, out = _bench(argv, capsys, monkeypatch, case.no_rights)
    lost = _snapshot(world.runs, world.tables) != before
    first = next((ln for ln in out.splitlines() if ln.startswith(("Error:", "note:"))), "")
    RESULTS.append((case.name, code, first, not lost))
    assert not lost, f"{case.name}: the runs or tables folder changed"
    assert "Traceback" not in out, out
    if case.accepted:
        assert code == 0, out[-2000:]
        assert case.expect in out and "note:" in out, out[-2000:]
        return
    assert code == 2, f"exit {code}, not 2: " + out[-2000:]  # the project's code for bad input
    errors = [ln for ln in out.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1 and "Fix: " in out, out[-2000:]
    assert case.expect in out, out[-2000:]
    assert "bench failed unexpectedly" not in out, out[-2000:]


def test_the_census_counts(world: World) -> None:
    """At least 40 wrong inputs, every one clear and lossless (the parametrized cases above ran first)."""
    wrong = [c for c in CASES if not c.accepted]
    assert len(wrong) >= 40 and len({c.name for c in CASES}) == len(CASES)
    for name, code, first, kept in RESULTS:
        print(f"[census] {name}: exit {code}: {first} (lost nothing: {kept})")
