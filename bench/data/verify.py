"""Checking a data set before it is used: counts, pairing by name, sizes, decodability, channel layout.

Loaders run these checks and raise the first problem as one :class:`DataError` sentence;
``bench data verify`` gets the whole :class:`VerifyReport`. Loaders read only image headers
(PIL ``Image.open`` without ``load`` gives size and mode), so no image is decoded twice: the
single full decode happens when the image is used, through ``read_image``. ``verify`` can
decode everything (``deep=True``) because a truncated file passes a header read. The modes
accepted here are the ones ``read_image`` decodes, with its conversion rules.

Synthetic roots (``bench data synth``): a data set whose folder, or the folder directly above
it, holds ``SYNTHETIC.json`` naming that data set is checked against the counts recorded there
instead of the release's; everything else (layout, pairing, decodability, sizes, channels) is
checked as for real data, and the loaded set says ``subset="synthetic"``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from bench.data.base import IMAGE_SUFFIXES, Pair, PairedSet
from bench.errors import BenchError, DataError, MissingFileError

DOC = "Data"
MARKER = "SYNTHETIC.json"
MARKER_FORMAT = "bench-synthetic/1"

#: Modes ``read_image`` decodes, and the rule it applies; anything else is a channel problem.
CHANNEL_RULES: dict[str, str] = {
    "RGB": "",
    "L": "grayscale replicated to RGB",
    "LA": "grayscale replicated to RGB, alpha dropped",
    "RGBA": "alpha dropped",
    "P": "palette converted to RGB",
    "PA": "palette converted to RGB, alpha dropped",
    "CMYK": "CMYK converted to RGB by Pillow",
    "YCbCr": "YCbCr converted to RGB by Pillow",
    "I;16": "16-bit grayscale scaled by 1/65535 and replicated",
    "I;16B": "16-bit grayscale scaled by 1/65535 and replicated",
    "I;16L": "16-bit grayscale scaled by 1/65535 and replicated",
    "I": "integer grayscale scaled by 1/65535 and replicated",
}
GRAY_MODES = frozenset({"L", "LA", "I;16", "I;16B", "I;16L", "I"})
#: Problem kinds, in the order a summary names them.
KINDS = ("layout", "labels", "duplicate", "unpaired", "count", "unreadable", "channels", "size")
FIXES = {
    "layout": "Point --data-root (or BENCH_DATA) at the folder holding the data set, in the layout REPRODUCE.md shows.",
    "labels": "Restore the data set's text files from the official archive.",
    "duplicate": "Keep one file per name (e.g. delete the .jpg copy of a .png).",
    "unpaired": "Restore the missing partner files, or remove the stray ones.",
    "count": "Restore the missing files from the official archive (or pass strict_counts=False for a subset).",
    "unreadable": "Replace the listed files with intact copies from the official archive.",
    "channels": "Convert the listed files to 8-bit RGB PNG.",
    "size": "Use the degraded and clear images from the same release (crops differ between releases).",
}


@dataclass(frozen=True)
class Header:
    """What a header read tells without decoding pixels; ``error`` is set when even that fails."""

    size: tuple[int, int] | None = None  # (width, height)
    mode: str | None = None
    colour16: bool = False  # 16-bit RGB(A): Pillow would keep only the high byte
    error: str | None = None


def decode_error(path: Path) -> str | None:
    """Decode the pixels (Pillow, no float conversion: a third of ``read_image``'s cost); the error or None."""
    try:
        with Image.open(path) as im:
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return str(e) or type(e).__name__
    return None


def probe(path: Path) -> Header:
    """Read an image's header: size, mode and whether it is a 16-bit colour file."""
    try:
        with Image.open(path) as im:
            raw = " ".join(str(t[3]) for t in (im.tile or []))
            colour16 = im.mode in ("RGB", "RGBA") and ";16" in raw
            return Header(im.size, im.mode, colour16)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return Header(error=str(e) or type(e).__name__)


@dataclass
class Problem:
    """One kind of problem: the files it affects and a sentence about the first of them."""

    kind: str
    files: list[str]
    detail: str
    n: int | None = None  # files affected, where they cannot all be named (a count short of the release)

    @property
    def affected(self) -> int:
        return len(self.files) if self.n is None else self.n

    @property
    def fix(self) -> str:
        return FIXES[self.kind]


@dataclass
class VerifyReport:
    """Everything a check found; ``.ok`` is False on any problem, notes (conversions) are not problems."""

    dataset: str
    root: Path
    found: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int | None] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    converted: dict[str, int] = field(default_factory=dict)  # rule -> number of files it applies to
    checked: int = 0  # files whose header (or, deep, whole image) was read
    synthetic: str | None = None  # the SYNTHETIC.json whose counts were checked against

    @property
    def ok(self) -> bool:
        return not self.problems

    def files(self, kind: str) -> list[str]:
        return [f for p in self.problems if p.kind == kind for f in p.files]

    @property
    def unpaired(self) -> list[str]:
        return self.files("unpaired")

    @property
    def unreadable(self) -> list[str]:
        return self.files("unreadable")

    @property
    def size_mismatches(self) -> list[str]:
        return self.files("size")

    @property
    def channel_problems(self) -> list[str]:
        return self.files("channels")

    def add(self, kind: str, files: list[str], detail: str, n: int | None = None) -> None:
        if files:
            self.problems.append(Problem(kind, files, detail, n))

    def note(self, mode: str) -> None:
        rule = CHANNEL_RULES.get(mode, "")
        if rule:
            self.converted[rule] = self.converted.get(rule, 0) + 1

    def merge(self, other: VerifyReport) -> VerifyReport:
        self.found |= other.found
        self.expected |= other.expected
        self.problems += other.problems
        for rule, n in other.converted.items():
            self.converted[rule] = self.converted.get(rule, 0) + n
        self.checked += other.checked
        self.synthetic = self.synthetic or other.synthetic
        return self

    def first(self) -> Problem | None:
        ordered = sorted(self.problems, key=lambda p: KINDS.index(p.kind))
        return ordered[0] if ordered else None

    def counts(self) -> str:
        return ", ".join(f"{s} {n}" + (f"/{self.expected[s]}" if self.expected.get(s) is not None else "")
                         for s, n in self.found.items())

    def summary(self) -> str:
        """One sentence: the first problem and how many files it affects, or what was checked."""
        first = self.first()
        if first is None:
            notes = [f"{n} file(s) {rule}" for rule, n in sorted(self.converted.items())]
            if self.synthetic:
                notes.append(f"SYNTHETIC data, counts as recorded in {self.synthetic}")
            return (f"{self.dataset} under {self.root}: OK, found {self.counts() or 'nothing'} "
                    f"({self.checked} file(s) checked{'; ' + '; '.join(notes) if notes else ''}).")
        more = len(self.problems) - 1
        tail = f", and {more} more problem(s)" if more else ""
        return f"{self.dataset}: {first.detail} ({first.affected} file(s) affected{tail})."

    def details(self) -> list[str]:
        """Every problem with up to 10 affected files each, for ``bench data verify``."""
        lines = [f"found: {self.counts()}"]
        for p in sorted(self.problems, key=lambda p: KINDS.index(p.kind)):
            shown = ", ".join(p.files[:10]) + (f" ... (+{len(p.files) - 10})" if len(p.files) > 10 else "")
            lines.append(f"{p.kind}: {p.detail} [{p.affected}]: {shown}")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "root": str(self.root), "ok": self.ok, "found": self.found,
                "expected": self.expected, "converted": self.converted, "checked": self.checked,
                "synthetic": self.synthetic,
                "problems": [{"kind": p.kind, "detail": p.detail, "affected": p.affected, "files": p.files}
                             for p in self.problems]}

    def raise_if_bad(self) -> None:
        """Raise the first problem as a one-sentence :class:`DataError`."""
        first = self.first()
        if first is not None:
            raise DataError(self.summary(), fix=first.fix, doc=DOC)


# --- finding and listing files ------------------------------------------------------------------

def resolve_root(root: Path, looks_right: Callable[[Path], bool], aliases: Iterable[str] = ()) -> Path | None:
    """``root`` itself when it holds the layout, else the first ``root/<alias>`` that does (case-insensitive)."""
    if looks_right(root):
        return root
    for alias in aliases:
        d: Path | None = root
        for part in alias.split("/"):
            d = child_dir(d, part) if d is not None else None
        if d is not None and looks_right(d):
            return d
    return None


def child_dir(folder: Path, name: str) -> Path | None:
    """``folder/name`` matched case-insensitively (``GT`` or ``gt``), or None."""
    exact = folder / name
    if exact.is_dir():
        return exact
    if not folder.is_dir():
        return None
    for d in sorted(folder.iterdir()):
        if d.is_dir() and d.name.lower() == name.lower():
            return d
    return None


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted; hidden files (``._x.png``, ``.DS_Store``) are skipped."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def index_by(files: Iterable[Path], pattern: str | None = None) -> tuple[dict[str, Path], list[str]]:
    """id -> file, with the id the first group of ``pattern`` matched on the stem (the stem if no pattern).

    Returns the index and the files whose id occurred before (``1.png`` beside ``1.jpg``).
    """
    rx = re.compile(pattern, re.IGNORECASE) if pattern else None
    out: dict[str, Path] = {}
    dups: list[str] = []
    for f in files:
        if rx is None:
            key = f.stem
        else:
            m = rx.fullmatch(f.stem)
            if not m:
                continue
            key = m.group(1)
        if key in out:
            dups.append(str(f))
        else:
            out[key] = f
    return out, dups


@dataclass(frozen=True)
class Synthetic:
    """A ``SYNTHETIC.json`` marker: the counts (and, for Dense-Haze, ids) ``bench data synth`` wrote."""

    path: Path
    counts: dict[str, int]
    ids: dict[str, list[str]]

    def expected(self, split: str, published: int | None) -> int | None:
        return self.counts.get(split, published)

    def wanted(self, split: str, published: list[str]) -> list[str]:
        ids = set(self.ids.get(split, self.ids.get("all", published)))
        return [i for i in published if i in ids]


def find_synthetic(folder: Path, dataset: str) -> Synthetic | None:
    """The marker for ``dataset`` in ``folder`` or the folder above it (LOL's split folders), or None."""
    fix = "Rerun 'bench data synth' for this root (or delete the file if the data is real)."
    for d in (folder, folder.parent):
        f = d / MARKER
        if not f.is_file():
            continue
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{f} is not readable JSON ({e}).", fix=fix, doc=DOC) from None
        if not isinstance(data, dict) or data.get("dataset") != dataset:
            continue
        counts, ids = data.get("counts"), data.get("ids", {})
        if (data.get("format") != MARKER_FORMAT or not isinstance(counts, dict) or not isinstance(ids, dict)
                or not all(isinstance(v, int) and v >= 0 for v in counts.values())):
            raise DataError(f"{f} is not a {MARKER_FORMAT} marker with counts per split.", fix=fix, doc=DOC)
        if data.get("complete") is not True:
            raise DataError(f"{d} holds a 'bench data synth' run that did not finish.", fix=fix, doc=DOC)
        return Synthetic(f, {str(k): v for k, v in counts.items()}, {str(k): list(map(str, v)) for k, v in ids.items()})
    return None


def with_marker(listing: Listing) -> Listing:
    """``listing`` with the counts of its SYNTHETIC.json in place of the release's, when it has one."""
    if listing.synthetic is not None:
        return listing
    mark = find_synthetic(listing.folder, listing.dataset)
    if mark is None:
        return listing
    if listing.wanted is not None:
        wanted = mark.wanted(listing.split, listing.wanted)
        return dataclasses.replace(listing, wanted=wanted, expected=len(wanted), synthetic=mark)
    return dataclasses.replace(listing, expected=mark.expected(listing.split, listing.expected), synthetic=mark)


def mark_synthetic(subset: str) -> str:
    """The subset label of a set loaded from a synthetic root: never "full", so never a reproduction."""
    return "synthetic" if subset == "full" else f"synthetic,{subset}"


@dataclass
class Listing:
    """What a layout search found for one split of a paired data set, before any check."""

    dataset: str  # registry name, which the PairedSet carries
    split: str
    folder: Path
    layout: str
    degraded: dict[str, Path]
    clear: dict[str, Path]
    expected: int | None = None
    wanted: list[str] | None = None  # ids the split must hold (Dense-Haze ranges); None: whatever is there
    duplicates: list[str] = field(default_factory=list)
    title: str = ""  # how messages name the data set ("Rain100H")
    synthetic: Synthetic | None = None  # set once a SYNTHETIC.json has replaced the release's counts

    @property
    def label(self) -> str:
        return f"{self.title or self.dataset} {self.split}"


def missing_root(label: str, root: Path, layout: str) -> MissingFileError:
    return MissingFileError(f"The {label} data set folder {root} does not exist; expected {layout}.",
                            fix="Download the data set and pass its folder as --data-root (or set BENCH_DATA).",
                            doc=DOC)


def existing_root(label: str, root: Path | str, layout: str) -> Path:
    """``root`` with ``~`` expanded, or the one-sentence error every loader gives for a folder that is not there."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise missing_root(label, root, layout)
    return root


def no_layout(label: str, root: Path, layout: str) -> MissingFileError:
    return MissingFileError(f"{root} does not hold the {label} data set in a known layout; expected {layout}.",
                            fix="Point --data-root at the folder that holds those files (or a parent of it).",
                            doc=DOC)


# --- checks -------------------------------------------------------------------------------------

def check_listing(listing: Listing, keep: list[str] | None = None, *, require_clear: bool = True,
                  strict_counts: bool = True, deep: bool = False) -> VerifyReport:
    """Check names and counts of the whole listing, then headers (or, ``deep``, full decodes) of ``keep``.

    ``keep`` defaults to every id; a loader passes the ids it returns after ``--limit``.
    """
    listing = with_marker(listing)
    rep = VerifyReport(listing.label, listing.folder)
    rep.synthetic = str(listing.synthetic.path) if listing.synthetic else None
    deg, clr = listing.degraded, listing.clear
    rep.add("duplicate", listing.duplicates,
            f"several files share one name, first {_first(listing.duplicates)}")
    if require_clear or clr:
        lonely = sorted(set(deg) - set(clr))
        rep.add("unpaired", [str(deg[i]) for i in lonely],
                f"degraded image {_first([str(deg[i]) for i in lonely])} has no clear partner")
    strays = sorted(set(clr) - set(deg))
    rep.add("unpaired", [str(clr[i]) for i in strays],
            f"clear image {_first([str(clr[i]) for i in strays])} has no degraded partner")
    ids = sorted(deg)
    if listing.wanted is not None:
        absent = [i for i in listing.wanted if i not in deg]
        if strict_counts:
            rep.add("count", absent, f"image '{_first(absent)}' of the split's {len(listing.wanted)} is missing")
        ids = [i for i in listing.wanted if i in deg]
    elif strict_counts and listing.expected is not None and len(ids) != listing.expected:
        rep.add("count", [str(listing.folder)],
                f"{len(ids)} degraded images found where "
                f"{'its SYNTHETIC.json records' if listing.synthetic else 'the release has'} {listing.expected}",
                n=abs(len(ids) - listing.expected))
    rep.found[listing.split] = len(ids)
    rep.expected[listing.split] = len(listing.wanted) if listing.wanted is not None else listing.expected
    check_pairs(rep, [(i, deg[i], clr.get(i)) for i in (ids if keep is None else keep)], deep)
    return rep


def checked_set(listing: Listing, limit: int | None = None, *, require_clear: bool = True,
                strict_counts: bool = True) -> PairedSet:
    """The split as a :class:`PairedSet` (``--limit`` applied), after names, counts and headers passed."""
    listing = with_marker(listing)
    deg, clr = listing.degraded, listing.clear
    ids = sorted(deg) if listing.wanted is None else [i for i in listing.wanted if i in deg]
    info = {"split": listing.split, "layout": listing.layout, "folder": str(listing.folder)}
    if listing.synthetic is not None:
        info["synthetic"] = str(listing.synthetic.path)
    full = PairedSet(listing.dataset, [Pair(i, deg[i], clr.get(i)) for i in ids], expected=listing.expected,
                     info=info)
    kept = full.limit(limit)
    rep = check_listing(listing, [p.id for p in kept.pairs], require_clear=require_clear,
                        strict_counts=strict_counts)
    rep.raise_if_bad()
    if listing.synthetic is not None:
        kept = dataclasses.replace(kept, subset=mark_synthetic(kept.subset))
    return kept


def check_pairs(rep: VerifyReport, pairs: list[tuple[str, Path, Path | None]], deep: bool) -> None:
    """Headers of each (id, degraded, clear): readable, a mode ``read_image`` handles, equal sizes and colour."""
    unreadable: list[str] = []
    channels: list[tuple[str, str]] = []
    sizes: list[tuple[str, str]] = []
    for pid, d, c in pairs:
        heads = {}
        for f in (d, c):
            if f is None:
                continue
            h = check_file(rep, f, deep, unreadable, channels)
            if h is not None:
                heads[f] = h
        if c is None or len(heads) < 2:
            continue
        hd, hc = heads[d], heads[c]
        if hd.size != hc.size:
            sizes.append((str(d), f"pair '{pid}': degraded {_wh(hd.size)} but clear {_wh(hc.size)}"))
            sizes.append((str(c), ""))
        if (hd.mode in GRAY_MODES) != (hc.mode in GRAY_MODES):
            channels.append((str(d), f"pair '{pid}' mixes a {hd.mode} degraded and a {hc.mode} clear image"))
    rep.add("unreadable", unreadable, f"{_first(unreadable)} cannot be decoded" if unreadable else "")
    rep.add("channels", [f for f, _ in channels], channels[0][1] if channels else "")
    rep.add("size", [f for f, _ in sizes], sizes[0][1] if sizes else "")


def check_file(rep: VerifyReport, f: Path, deep: bool, unreadable: list[str],
               channels: list[tuple[str, str]]) -> Header | None:
    """One file's header (and, ``deep``, full decode); records problems and conversion notes."""
    rep.checked += 1
    if not f.is_file():
        unreadable.append(str(f))
        return None
    h = probe(f)
    if h.error is not None:
        unreadable.append(str(f))
        return None
    if h.colour16:
        channels.append((str(f), f"{f} is a 16-bit colour image, which Pillow would silently cut to 8 bits"))
        return h
    if h.mode not in CHANNEL_RULES:
        channels.append((str(f), f"{f} has image mode '{h.mode}', which bench cannot read"))
        return h
    if deep and decode_error(f) is not None:
        unreadable.append(str(f))
        return None
    rep.note(h.mode or "")
    return h


def _first(items: list[str]) -> str:
    return items[0] if items else ""


def _wh(size: tuple[int, int] | None) -> str:
    return f"{size[0]}x{size[1]}" if size else "?"


# --- bench data verify --------------------------------------------------------------------------

VERIFIERS: dict[str, Callable[..., VerifyReport]] = {}


def register_verifier(name: str) -> Callable[[Callable[..., VerifyReport]], Callable[..., VerifyReport]]:
    """Register the full check of data set ``name``: ``fn(root, deep=True, **kw) -> VerifyReport``."""

    def deco(fn: Callable[..., VerifyReport]) -> Callable[..., VerifyReport]:
        VERIFIERS[name] = fn
        return fn

    return deco


def verify_dataset(name: str, root: Path, deep: bool = True, **kw: Any) -> VerifyReport:
    """The full report on data set ``name`` under ``root``; layout errors become a problem, never a traceback."""
    from bench.registry import DATASETS

    loader = DATASETS.get(name)  # unknown names fail with "did you mean"
    root = Path(root).expanduser()
    try:
        if name in VERIFIERS:
            return VERIFIERS[name](root, deep=deep, **kw)
        return _verify_by_loader(name, loader, root)
    except BenchError as e:
        rep = VerifyReport(name, root)
        rep.problems.append(Problem("layout", [str(root)], e.message.rstrip(".")))
        return rep


def _verify_by_loader(name: str, loader: Callable[..., Any], root: Path) -> VerifyReport:
    """Data sets without their own verifier (the smoke sets): load each split, decode every file."""
    rep = VerifyReport(name, root)
    for split in ("train", "test"):
        ps = loader(root, split=split)
        rep.found[split] = len(ps)
        check_pairs(rep, [(p.id, p.degraded, p.clear) for p in ps.pairs], deep=True)
    return rep
