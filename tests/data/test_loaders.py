"""Data set loaders: real samples from shared/data, synthetic folders for every layout and every bad input."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.shared import shared_path

import bench
from bench.data.base import read_image
from bench.data.cub import cub
from bench.data.dense_haze import dense_haze
from bench.data.lol import lol
from bench.data.rain import rain13k, rain100h
from bench.errors import DataError, MissingFileError


def png(path: Path, h: int = 6, w: int = 8, value: int = 100, mode: str = "RGB") -> Path:
    """A small PNG; ``value`` varies the content so pairs are distinct files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    shape = (h, w) if mode in ("L", "I;16") else (h, w, {"RGB": 3, "RGBA": 4}[mode])
    arr = rng.integers(0, 65535 if mode == "I;16" else 255, shape).astype(np.uint16 if mode == "I;16" else np.uint8)
    Image.fromarray(arr).save(path)
    return path


def png16_colour(path: Path, arr: np.ndarray) -> Path:
    """A 16-bit RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def pairs_in(root: Path, deg: str, clr: str, names: list[str], **kw: int) -> None:
    for k, n in enumerate(names):
        png(root / deg / n, value=k, **kw)
        png(root / clr / n, value=100 + k, **kw)


# --- real samples ---------------------------------------------------------------------------

def test_rain100h_real_sample_all_100_pairs_in_the_inputcrop_layout() -> None:
    root = shared_path("data", "rain100h_crop")
    ps = rain100h(root)
    assert len(ps) == 100 and ps.expected == 100 and ps.subset == "full" and ps.name == "rain100h"
    assert ps.info["layout"] == "inputcrop/ + cleancrop/"
    assert {p.id for p in ps.pairs} == {str(i) for i in range(1, 101)}
    assert all(p.degraded.parent.name == "inputcrop" and p.clear.parent.name == "cleancrop" for p in ps.pairs)
    first = ps.pairs[0]
    assert read_image(first.degraded).shape == read_image(first.clear).shape


def test_rain100h_found_under_a_parent_folder_and_limit_is_first_n_by_sorted_id() -> None:
    ps = rain100h(shared_path("data"), limit=3)  # data/ holds rain100h_crop/
    assert [p.id for p in ps.pairs] == ["1", "10", "100"]  # sorted as text: deterministic
    assert ps.subset == "truncated:3" and ps.expected == 100


def test_lol_real_low_inputs_without_ground_truth() -> None:
    root = shared_path("data", "lol_eval15_low_partial")
    ps = lol(root, "test", require_clear=False, strict_counts=False)
    assert [p.id for p in ps.pairs] == ["1", "22", "780"] and all(p.clear is None for p in ps.pairs)
    with pytest.raises(DataError, match=r"LOL eval15 test: degraded image .*1\.png has no clear partner "
                                        r"\(3 file\(s\) affected, and 1 more problem"):
        lol(root, "test")


def test_cub_real_subset_needs_subset_variant_and_then_loads() -> None:
    root = shared_path("data", "cub100_subset_227")
    with pytest.raises(DataError, match="has 2,999 train images where the full release has 5,994") as e:
        cub(root, "train")
    assert "variant='subset'" in (e.value.fix or "")
    test = cub(root, "test", limit=250, variant="subset")
    assert test.num_classes == 100 and test.class_names[0] == "Black_footed_Albatross"
    assert len(test) == 250 and test.subset == "truncated:250" and test.variant == "subset"
    assert len(set(test.labels)) == 100  # class-balanced truncation, not the first 250 ids
    assert all(test.class_names[i.label] == i.path.parent.name for i in test.items)  # subset dirs = class names
    assert all(i.path.is_file() for i in test.items)


def test_cub_real_subset_split_sizes_and_labels() -> None:
    root = shared_path("data", "cub100_subset_227")
    train = bench.DATASETS.get("cub_subset")(root, "train", limit=100)
    assert train.split == "train" and len(train) == 100 and sorted(train.labels) == list(range(100))
    from bench.data.cub import read_tables

    t = read_tables(root)
    assert len(t.split_ids("train")) == 2999 and len(t.split_ids("test")) == 2903


# --- registry ---------------------------------------------------------------------------------

def test_registry_metadata_states_role_count_and_metric_convention() -> None:
    meta = {n: bench.DATASETS.meta(n) for n in ("dense_haze", "rain13k", "rain100h", "lol", "cub")}
    want = {"task": "deraining", "role": "test", "expected": 100, "convention": "y-matlab-double"}
    assert {k: meta["rain100h"][k] for k in want} == want
    assert meta["rain13k"]["expected"] == 13_712 and meta["rain13k"]["role"] == "train"
    assert meta["lol"]["convention"] == "rgb-iat" and meta["dense_haze"]["convention"] == "rgb"
    assert meta["dense_haze"]["expected"] == 55
    assert meta["cub"]["expected"] == {"train": 5994, "test": 5794, "classes": 200}
    assert bench.DATASETS.get("rain100h") is rain100h


# --- synthetic layouts --------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["input_target", "rain_norain_flat", "rain_norain_dirs", "crop"])
def test_rain_layouts_pair_by_name(tmp_path: Path, layout: str) -> None:
    if layout == "input_target":
        pairs_in(tmp_path, "input", "target", ["a.png", "b.png", "c.png"])
        ids = ["a", "b", "c"]
    elif layout == "rain_norain_flat":
        for k in (1, 2, 3):
            png(tmp_path / f"rain-{k:03d}.png", value=k)
            png(tmp_path / f"norain-{k:03d}.png", value=10 + k)
        ids = ["001", "002", "003"]
    elif layout == "rain_norain_dirs":
        for k in (1, 2, 3):
            png(tmp_path / "rain" / f"rain-{k}.png", value=k)
            png(tmp_path / "norain" / f"norain-{k}.png", value=10 + k)
        ids = ["1", "2", "3"]
    else:
        pairs_in(tmp_path, "inputcrop", "cleancrop", ["1.png", "2.png", "3.png"])
        ids = ["1", "2", "3"]
    ps = rain100h(tmp_path, strict_counts=False)
    assert [p.id for p in ps.pairs] == ids
    for p in ps.pairs:
        assert p.degraded.name != p.clear.name or p.degraded.parent != p.clear.parent
        assert p.clear.stem.removeprefix("norain-") == p.degraded.stem.removeprefix("rain-")
    with pytest.raises(DataError, match="Rain100H test: 3 degraded images found where the release has 100 "
                                        r"\(97 file\(s\) affected\)"):
        rain100h(tmp_path)


def test_rain13k_finds_the_mprnet_tree_and_refuses_other_splits(tmp_path: Path) -> None:
    pairs_in(tmp_path / "Datasets" / "train" / "Rain13K", "input", "target", ["x.png", "y.png"])
    ps = rain13k(tmp_path, strict_counts=False)
    assert len(ps) == 2 and ps.name == "rain13k"
    with pytest.raises(DataError, match="Rain13K has only a 'train' split, not 'test'"):
        rain13k(tmp_path, "test")


def dense_haze_tree(root: Path, numbers: range = range(1, 56), h: int = 5, w: int = 7) -> None:
    for n in numbers:
        png(root / "hazy" / f"{n:02d}_hazy.png", h, w, value=n)
        png(root / "GT" / f"{n:02d}_GT.png", h, w, value=100 + n)


def test_dense_haze_ntire_splits_and_override(tmp_path: Path) -> None:
    dense_haze_tree(tmp_path / "Dense_Haze_NTIRE19")
    assert [p.id for p in dense_haze(tmp_path).pairs] == ["51", "52", "53", "54", "55"]
    assert [p.id for p in dense_haze(tmp_path, "val").pairs] == ["46", "47", "48", "49", "50"]
    train = dense_haze(tmp_path, "train", limit=4)
    assert [p.id for p in train.pairs] == ["01", "02", "03", "04"] and train.subset == "truncated:4"
    assert len(dense_haze(tmp_path, "train")) == 45
    assert len(dense_haze(tmp_path, "test", ranges={"test": (41, 55)})) == 15
    p = dense_haze(tmp_path).pairs[0]
    assert p.degraded.name == "51_hazy.png" and p.clear.name == "51_GT.png"


def test_dense_haze_flat_folder_and_missing_image_named(tmp_path: Path) -> None:
    for n in (51, 52, 54, 55):
        png(tmp_path / f"{n}_hazy.png", value=n)
        png(tmp_path / f"{n}_GT.png", value=n + 1)
    with pytest.raises(DataError, match=r"Dense-Haze test: image '53' of the split's 5 is missing "
                                        r"\(1 file\(s\) affected\)"):
        dense_haze(tmp_path)
    assert [p.id for p in dense_haze(tmp_path, strict_counts=False).pairs] == ["51", "52", "54", "55"]
    with pytest.raises(DataError, match="Dense-Haze has no split 'dev'"):
        dense_haze(tmp_path, "dev")


def test_lol_splits(tmp_path: Path) -> None:
    pairs_in(tmp_path / "LOLdataset" / "our485", "low", "high", ["2.png", "5.png"])
    pairs_in(tmp_path / "LOLdataset" / "eval15", "low", "high", ["1.png"])
    assert [p.id for p in lol(tmp_path, "train", strict_counts=False).pairs] == ["2", "5"]
    test = lol(tmp_path, "test", strict_counts=False)
    assert [p.id for p in test.pairs] == ["1"] and test.pairs[0].clear.parent.name == "high"
    with pytest.raises(DataError, match="LOL eval15 test: 1 degraded images found where the release has 15"):
        lol(tmp_path, "test")


# --- bad inputs: one test each, each asserting the message ----------------------------------

def test_missing_root_names_path_and_layout(tmp_path: Path) -> None:
    gone = tmp_path / "nope"
    for loader, what in ((rain100h, "inputcrop/ \\+ cleancrop/"), (dense_haze, "NN_hazy.png and NN_GT.png"),
                         (lol, "our485/\\{low,high\\}/"), (cub, "images.txt")):
        with pytest.raises(MissingFileError, match=rf"folder {gone} does not exist; expected .*{what}") as e:
            loader(gone)
        assert e.value.doc == "Data" and e.value.fix


def test_existing_root_without_layout(tmp_path: Path) -> None:
    png(tmp_path / "photo.png")
    with pytest.raises(MissingFileError, match=f"{tmp_path} does not hold the Rain100H data set in a known layout"):
        rain100h(tmp_path)


def test_unpaired_name(tmp_path: Path) -> None:
    pairs_in(tmp_path, "input", "target", ["1.png", "2.png"])
    png(tmp_path / "input" / "3.png")
    with pytest.raises(DataError, match=r"degraded image .*input/3\.png has no clear partner \(1 file\(s\) affected"):
        rain100h(tmp_path, strict_counts=False)
    png(tmp_path / "target" / "3.png")
    png(tmp_path / "target" / "4.png")
    with pytest.raises(DataError, match=r"clear image .*target/4\.png has no degraded partner"):
        rain100h(tmp_path, strict_counts=False)


def test_size_mismatch(tmp_path: Path) -> None:
    pairs_in(tmp_path, "input", "target", ["1.png", "2.png"])
    png(tmp_path / "target" / "2.png", h=5, w=8)
    with pytest.raises(DataError, match=r"pair '2': degraded 8x6 but clear 8x5 \(2 file\(s\) affected\)") as e:
        rain100h(tmp_path, strict_counts=False)
    assert "same release" in (e.value.fix or "")


def test_corrupt_file(tmp_path: Path) -> None:
    pairs_in(tmp_path, "input", "target", ["1.png", "2.png"])
    (tmp_path / "input" / "2.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"input/2\.png cannot be decoded \(1 file\(s\) affected\)"):
        rain100h(tmp_path, strict_counts=False)


def test_grayscale_and_alpha_follow_the_stated_rule(tmp_path: Path) -> None:
    png(tmp_path / "input" / "g.png", mode="L", value=1)
    png(tmp_path / "target" / "g.png", mode="L", value=2)
    png(tmp_path / "input" / "a.png", mode="RGBA", value=3)
    png(tmp_path / "target" / "a.png", mode="RGB", value=4)
    ps = rain100h(tmp_path, strict_counts=False)
    gray = read_image(next(p for p in ps.pairs if p.id == "g").degraded)
    assert gray.shape[0] == 3 and torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    rgba = read_image(tmp_path / "input" / "a.png")
    src = np.array(Image.open(tmp_path / "input" / "a.png"))[..., :3]
    assert torch.allclose(rgba, torch.from_numpy(src).permute(2, 0, 1).float() / 255.0)  # alpha dropped, colour kept
    png(tmp_path / "target" / "g.png", mode="RGB", value=5)  # grayscale input, colour ground truth
    with pytest.raises(DataError, match="pair 'g' mixes a L degraded and a RGB clear image"):
        rain100h(tmp_path, strict_counts=False)


def test_16bit_grayscale_is_read_exactly_and_16bit_colour_refused(tmp_path: Path) -> None:
    png(tmp_path / "input" / "1.png", mode="I;16", value=1)
    png(tmp_path / "target" / "1.png", mode="I;16", value=2)
    ps = rain100h(tmp_path, strict_counts=False)
    img = read_image(ps.pairs[0].degraded)
    raw = np.asarray(Image.open(tmp_path / "input" / "1.png")).astype(np.float64)
    assert raw.max() > 255  # really 16-bit content
    assert np.abs(img[0].double().numpy() - raw / 65535.0).max() < 1e-7  # float32 rounding only
    arr = np.random.default_rng(0).integers(0, 65535, (6, 8, 3))
    png16_colour(tmp_path / "input" / "1.png", arr)
    png16_colour(tmp_path / "target" / "1.png", arr)
    with pytest.raises(DataError, match=r"input/1\.png is a 16-bit colour image, which Pillow would silently cut "
                                        r"to 8 bits \(2 file\(s\) affected\)"):
        rain100h(tmp_path, strict_counts=False)


def test_unsupported_mode_refused(tmp_path: Path) -> None:
    pairs_in(tmp_path, "input", "target", ["1.png"])
    Image.new("1", (8, 6)).save(tmp_path / "target" / "1.png")
    with pytest.raises(DataError, match=r"target/1\.png has image mode '1', which bench cannot read"):
        rain100h(tmp_path, strict_counts=False)


def test_duplicate_names_refused(tmp_path: Path) -> None:
    pairs_in(tmp_path, "input", "target", ["1.png"])
    Image.open(tmp_path / "input" / "1.png").save(tmp_path / "input" / "1.jpg")
    with pytest.raises(DataError, match=r"Rain100H test: several files share one name, first .*input/1\.png"):
        rain100h(tmp_path, strict_counts=False)


def test_limit_checks_only_kept_headers_but_all_names(tmp_path: Path) -> None:
    pairs_in(tmp_path, "input", "target", ["1.png", "2.png", "3.png"])
    (tmp_path / "input" / "3.png").write_bytes(b"garbage")
    assert len(rain100h(tmp_path, limit=2, strict_counts=False)) == 2  # 3.png is not returned, not opened
    png(tmp_path / "input" / "4.png")
    with pytest.raises(DataError, match="has no clear partner"):
        rain100h(tmp_path, limit=2, strict_counts=False)
    with pytest.raises(DataError, match="--limit must be positive"):
        rain100h(tmp_path, limit=0, strict_counts=False)


# --- CUB text files -------------------------------------------------------------------------------

def cub_tree(root: Path, per_class: int = 3, classes: tuple[str, ...] = ("A_bird", "B_bird", "C_bird")) -> None:
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": [], "classes.txt": []}
    k = 0
    for c, name in enumerate(classes, 1):
        lines["classes.txt"].append(f"{c} {c:03d}.{name}")
        for j in range(per_class):
            k += 1
            rel = f"{c:03d}.{name}/{name}_{j}.jpg"
            (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((9, 11, 3), 20 * k, np.uint8)).save(root / "images" / rel)
            lines["images.txt"].append(f"{k} {rel}")
            lines["image_class_labels.txt"].append(f"{k} {c}")
            lines["train_test_split.txt"].append(f"{k} {1 if j < per_class - 1 else 0}")
    for f, ls in lines.items():
        (root / f).write_text("\n".join(ls) + "\n")


def test_cub_official_format(tmp_path: Path) -> None:
    cub_tree(tmp_path / "CUB_200_2011")
    with pytest.raises(DataError, match="has 6 train images where the full release has 5,994"):
        cub(tmp_path, "train")
    train = cub(tmp_path, "train", variant="subset")
    assert train.ids == ["1", "2", "4", "5", "7", "8"] and train.labels == [0, 0, 1, 1, 2, 2]
    assert train.class_names == ["001.A_bird", "002.B_bird", "003.C_bird"]
    test = cub(tmp_path, "test", variant="subset")
    assert test.ids == ["3", "6", "9"] and test.labels == [0, 1, 2]
    assert cub(tmp_path, "train", limit=3, variant="subset").ids == ["1", "4", "7"]  # one per class first


@pytest.mark.parametrize(("edit", "message"), [
    ("drop_label", r"1 image id\(s\) are missing from image_class_labels.txt, first 9"),
    ("bad_flag", "line\\(s\\) of train_test_split.txt are not 0 or 1, first id 2 \\('2'\\)"),
    ("unknown_class", r"have a class id missing from classes.txt, first image 9 \(class 7\)"),
    ("malformed", r"images.txt line 3 is '3', not '<id> <value>'"),
    ("missing_file", r"C_bird_2.jpg is missing or cannot be decoded \(1 file\(s\) affected\)"),
])
def test_cub_bad_text_files(tmp_path: Path, edit: str, message: str) -> None:
    cub_tree(tmp_path)

    def rewrite(name: str, fn: object) -> None:
        lines = (tmp_path / name).read_text().splitlines()
        (tmp_path / name).write_text("\n".join(fn(lines)) + "\n")  # type: ignore[operator]

    if edit == "drop_label":
        rewrite("image_class_labels.txt", lambda ls: ls[:-1])
    elif edit == "bad_flag":
        rewrite("train_test_split.txt", lambda ls: [ls[0], "2 2", *ls[2:]])
    elif edit == "unknown_class":
        rewrite("image_class_labels.txt", lambda ls: [*ls[:-1], "9 7"])
    elif edit == "malformed":
        rewrite("images.txt", lambda ls: [*ls[:2], "3", *ls[3:]])
    else:
        (tmp_path / "images" / "003.C_bird" / "C_bird_2.jpg").unlink()
    with pytest.raises(DataError, match=message):
        cub(tmp_path, "test", variant="subset")


def test_read_image_refuses_16bit_colour_and_reads_16bit_gray(tmp_path) -> None:
    """Pillow reads 16-bit RGB PNGs as their high byte; read_image must refuse them, not guess."""
    import struct
    import zlib

    import numpy as np
    import pytest
    from PIL import Image

    from bench.data.base import read_image
    from bench.errors import DataError

    def png16_rgb(path, arr):
        h, w, _ = arr.shape
        raw = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                         + chunk(b"IEND", b""))

    png16_rgb(tmp_path / "c16.png", np.full((4, 4, 3), 40000, np.uint16))
    with pytest.raises(DataError, match="16-bit colour"):
        read_image(tmp_path / "c16.png")
    Image.fromarray(np.full((4, 4), 65535 // 2, np.uint16)).save(tmp_path / "g16.png")
    got = read_image(tmp_path / "g16.png")
    assert got.shape == (3, 4, 4)
    assert float(got.max()) == pytest.approx(32767 / 65535, abs=1e-6)
