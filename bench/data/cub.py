"""CUB-200-2011 for the classification check (Table 2), read from its official text files.

``images.txt`` (id, relative path), ``image_class_labels.txt`` (id, class id),
``train_test_split.txt`` (id, 1 = train / 0 = test), ``classes.txt`` (class id, name), and
``images/``. The full release has 5,994 train and 5,794 test images of 200 classes; the
loader insists on those counts unless ``variant="subset"`` (e.g. the 100-class subset in
shared/), which still checks that the files agree with each other and exist. Labels are
0-based, in the order of the class ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.data.verify import (
    DOC,
    VerifyReport,
    check_file,
    child_dir,
    existing_root,
    find_synthetic,
    mark_synthetic,
    no_layout,
    register_verifier,
    resolve_root,
)
from bench.errors import DataError
from bench.registry import DATASETS

FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
FULL = {"train": 5_994, "test": 5_794, "classes": 200}
VARIANTS = ("full", "subset")
LAYOUT = "images/, " + ", ".join(FILES) + " (the CUB_200_2011 archive)"
ALIASES = ("CUB_200_2011", "CUB_200_2011/CUB_200_2011", "cub", "CUB")


@dataclass(frozen=True)
class LabelledImage:
    id: str  # the official image id
    path: Path
    label: int  # 0-based class index


@dataclass
class LabelledSet:
    """Images of one split with class labels, plus what result rows must say about the set."""

    name: str
    split: str
    items: list[LabelledImage]
    class_names: list[str]
    variant: str = "full"  # "full" (the release's counts) or "subset"
    subset: str = "full"  # "full" or "truncated:N"
    expected: int | None = None
    info: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def paths(self) -> list[Path]:
        return [i.path for i in self.items]

    @property
    def labels(self) -> list[int]:
        return [i.label for i in self.items]

    @property
    def ids(self) -> list[str]:
        return [i.id for i in self.items]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def limit(self, n: int | None) -> LabelledSet:
        """``n`` images taken class by class in turn (each class's images by id), marked ``truncated:n``.

        Not the first ``n`` ids: those are sorted by class, so they would hold one or two classes.
        """
        if n is None or n >= len(self.items):
            return self
        if n <= 0:
            raise DataError(f"--limit must be positive, got {n}.")
        by_class: dict[int, list[LabelledImage]] = {}
        for it in sorted(self.items, key=lambda i: _id_key(i.id)):
            by_class.setdefault(it.label, []).append(it)
        queues = [by_class[k] for k in sorted(by_class)]
        kept: list[LabelledImage] = []
        depth = 0
        while len(kept) < n:
            kept += [q[depth] for q in queues if depth < len(q)][: n - len(kept)]
            depth += 1
        kept.sort(key=lambda i: _id_key(i.id))
        return LabelledSet(self.name, self.split, kept, list(self.class_names), self.variant, f"truncated:{n}",
                           self.expected, dict(self.info))

    def first_classes(self, k: int | None) -> LabelledSet:
        """Only the images of the first ``k`` classes (labels stay 0..k-1), marked ``<k> classes``.

        A class cut keeps a cheap run's classifier meaningful: a few classes with their images,
        rather than every class with too few images to learn from.
        """
        if k is None or k >= self.num_classes:
            return self
        if k < 2:
            raise DataError(f"--classes must be at least 2 (a classifier needs a choice), got {k}.")
        kept = [it for it in self.items if it.label < k]
        return LabelledSet(self.name, self.split, kept, list(self.class_names[:k]), self.variant,
                           f"{k} classes" if self.subset == "full" else f"{self.subset},{k} classes",
                           self.expected, dict(self.info))


def _id_key(i: str) -> tuple[int, str]:
    return (int(i), i) if i.isdigit() else (1 << 62, i)


def _read_table(path: Path) -> dict[str, str]:
    """``<id> <value>`` lines -> {id: value}; a malformed or repeated line is a DataError."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise DataError(f"{path} line {n} is '{line.strip()}', not '<id> <value>'.",
                            fix="Restore the file from the official CUB_200_2011 archive.", doc=DOC)
        if parts[0] in out:
            raise DataError(f"{path} lists id {parts[0]} twice (line {n}).",
                            fix="Restore the file from the official CUB_200_2011 archive.", doc=DOC)
        out[parts[0]] = parts[1].strip()
    return out


def _looks_right(folder: Path) -> bool:
    return all((folder / f).is_file() for f in FILES)


@dataclass
class CubTables:
    """The four text files, cross-checked."""

    folder: Path
    images: dict[str, str]
    labels: dict[str, str]
    is_train: dict[str, str]
    classes: dict[str, str]

    def split_ids(self, split: str) -> list[str]:
        flag = {"train": "1", "test": "0"}[split]
        return sorted((i for i, v in self.is_train.items() if v == flag), key=_id_key)

    def class_index(self) -> dict[str, int]:
        return {c: k for k, c in enumerate(sorted(self.classes, key=_id_key))}

    def class_names(self) -> list[str]:
        return [self.classes[c] for c in sorted(self.classes, key=_id_key)]


def read_tables(root: Path) -> CubTables:
    """Find and parse the text files; every image id must appear in all three image files, with known classes."""
    root = existing_root("CUB-200-2011", root, LAYOUT)
    folder = resolve_root(root, _looks_right, ALIASES)
    if folder is None:
        raise no_layout("CUB-200-2011", root, LAYOUT)
    t = CubTables(folder, *(_read_table(folder / f) for f in FILES))
    fix = "Restore the text files from the official CUB_200_2011 archive."
    for fname, table in (("image_class_labels.txt", t.labels), ("train_test_split.txt", t.is_train)):
        lacking = sorted(set(t.images) - set(table), key=_id_key)
        extra = sorted(set(table) - set(t.images), key=_id_key)
        if lacking or extra:
            ids, how = (lacking, f"missing from {fname}") if lacking else (extra, f"in {fname} but not images.txt")
            raise DataError(f"CUB-200-2011: {len(ids)} image id(s) are {how}, first {ids[0]}.", fix=fix, doc=DOC)
    bad_flags = sorted((i for i, v in t.is_train.items() if v not in ("0", "1")), key=_id_key)
    if bad_flags:
        raise DataError(f"CUB-200-2011: {len(bad_flags)} line(s) of train_test_split.txt are not 0 or 1, first id "
                        f"{bad_flags[0]} ('{t.is_train[bad_flags[0]]}').", fix=fix, doc=DOC)
    unknown = sorted((i for i, c in t.labels.items() if c not in t.classes), key=_id_key)
    if unknown:
        raise DataError(f"CUB-200-2011: {len(unknown)} image(s) have a class id missing from classes.txt, first "
                        f"image {unknown[0]} (class {t.labels[unknown[0]]}).", fix=fix, doc=DOC)
    return t


def expected_counts(t: CubTables) -> dict[str, int]:
    """The full release's counts, or those a synthetic root's SYNTHETIC.json records."""
    mark = find_synthetic(t.folder, "cub")
    return {k: mark.counts.get(k, v) for k, v in FULL.items()} if mark else dict(FULL)


def _check_counts(t: CubTables, variant: str) -> list[tuple[str, int, int]]:
    """(what, found, expected) for every count that differs from the full release (or the synthetic marker)."""
    found = {"train": len(t.split_ids("train")), "test": len(t.split_ids("test")), "classes": len(t.classes)}
    want = expected_counts(t)
    return [(k, found[k], want[k]) for k in FULL if variant == "full" and found[k] != want[k]]


@DATASETS.register("cub", task="classification", role="train+test", expected=FULL, convention="top1",
                   summary="CUB-200-2011 (official text files); variant='subset' for a class subset")
def cub(root: Path, split: str = "test", limit: int | None = None, *, variant: str = "full",
        classes: int | None = None) -> LabelledSet:
    """The train or test images with labels (first ``classes`` classes only, if given), header-checked
    (size, mode) after ``--limit``."""
    if split not in ("train", "test"):
        raise DataError(f"CUB-200-2011 has no split '{split}'; it has train and test.",
                        fix="Use split='train' or split='test'.", doc=DOC)
    if variant not in VARIANTS:
        raise DataError(f"Unknown CUB variant '{variant}'; use 'full' (200 classes) or 'subset'.", doc=DOC)
    t = read_tables(root)
    off = _check_counts(t, variant)
    if off:
        what, n, want = off[0]
        noun = "classes" if what == "classes" else f"{what} images"
        source = "its SYNTHETIC.json records" if find_synthetic(t.folder, "cub") else "the full release has"
        raise DataError(f"CUB-200-2011 under {t.folder} has {n:,} {noun} where {source} {want:,}.",
                        fix="Restore the full archive, or pass variant='subset' for a deliberate subset.", doc=DOC)
    index = t.class_index()
    images = child_dir(t.folder, "images") or t.folder / "images"
    items = [LabelledImage(i, images / t.images[i], index[t.labels[i]]) for i in t.split_ids(split)]
    expected = expected_counts(t)[split] if variant == "full" else None
    mark = find_synthetic(t.folder, "cub")
    info = {"folder": str(t.folder), "classes": str(len(index))} | ({"synthetic": str(mark.path)} if mark else {})
    full = LabelledSet("cub", split, items, t.class_names(), variant, "full", expected, info)
    kept = full.first_classes(classes).limit(limit)
    if mark is not None:
        kept.subset = mark_synthetic(kept.subset)
    rep = VerifyReport(f"CUB-200-2011 {split}", t.folder)
    unreadable: list[str] = []
    channels: list[tuple[str, str]] = []
    for it in kept.items:
        check_file(rep, it.path, False, unreadable, channels)
    rep.add("unreadable", unreadable, f"{unreadable[0]} is missing or cannot be decoded" if unreadable else "")
    rep.add("channels", [f for f, _ in channels], channels[0][1] if channels else "")
    rep.raise_if_bad()
    return kept


@DATASETS.register("cub_subset", task="classification", role="train+test", expected=None, convention="top1",
                   summary="a class subset of CUB-200-2011 in the official format (e.g. shared/cub100_subset_227)")
def cub_subset(root: Path, split: str = "test", limit: int | None = None, *,
               classes: int | None = None) -> LabelledSet:
    """``cub`` with ``variant="subset"``: for callers that pass only (root, split, limit)."""
    return cub(root, split, limit, variant="subset", classes=classes)


@register_verifier("cub")
def verify(root: Path, deep: bool = True, variant: str = "full") -> VerifyReport:
    """Text files agree, counts match the release (``variant="full"``), every image exists and decodes."""
    t = read_tables(root)
    rep = VerifyReport("CUB-200-2011", t.folder)
    found = {"train": len(t.split_ids("train")), "test": len(t.split_ids("test")), "classes": len(t.classes)}
    rep.found = found
    rep.expected = expected_counts(t) if variant == "full" else {k: None for k in FULL}  # type: ignore[assignment]
    mark = find_synthetic(t.folder, "cub")
    rep.synthetic = str(mark.path) if mark else None
    source = "its SYNTHETIC.json records" if mark else "the full release has"
    for what, n, want in _check_counts(t, variant):
        if what == "classes":
            rep.add("count", [str(t.folder / "classes.txt")], f"classes.txt lists {n} classes where {source} {want}")
        else:
            rep.add("count", [str(t.folder / "train_test_split.txt")], f"the {what} split has {n:,} images where "
                    f"{source} {want:,}", n=abs(n - want))
    images = child_dir(t.folder, "images") or t.folder / "images"
    unreadable: list[str] = []
    channels: list[tuple[str, str]] = []
    for i in sorted(t.images, key=_id_key):
        check_file(rep, images / t.images[i], deep, unreadable, channels)
    rep.add("unreadable", unreadable, f"{unreadable[0]} is missing or cannot be decoded" if unreadable else "")
    rep.add("channels", [f for f, _ in channels], channels[0][1] if channels else "")
    return rep


@register_verifier("cub_subset")
def verify_subset(root: Path, deep: bool = True) -> VerifyReport:
    return verify(root, deep=deep, variant="subset")
