"""``bench compare``: paired statistics on synthetic result files with a known true delta, refusals, formats, CLI.

Also: files from other tools (id columns, ``1.png`` vs ``1``, unknown metric directions), output
that never cuts a number (80 columns, pipes, narrow terminals), and the folder mode on real
Rain100H images.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench import cli
from bench.errors import BenchError, DataError
from bench.evaluate import compare as C

PSNR_RGB = "rgb|range=1|crop=0|q8|pyiqa-0.1.16"
PSNR_Y = "y-pyiqa-rounded|range=255|crop=0|q8|pyiqa-0.1.16"
PSNR_Y_LEGACY = "y|range=255|crop=0|q8|pyiqa-0.1.16"  # written before 'y' was renamed
LPIPS = "rgb|alex|v0.1|q8|pyiqa-0.1.16"
FID = "rgb|inception-2015-12-05|pool3-2048|tf1-bilinear-299|uint8|torch-fidelity-0.4.0"
N = 40
TRUE_DELTA = 0.5


def _frames(n: int = N, delta: float = TRUE_DELTA, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A and B on the same images; B = A + delta (PSNR, dB) + paired noise, and LPIPS lower by delta / 25."""
    rng = np.random.default_rng(seed)
    ids = [f"{i:03d}" for i in range(1, n + 1)]
    psnr_a = rng.normal(25, 3, n)
    lpips_a = rng.uniform(0.1, 0.4, n)
    a = pd.DataFrame({"dataset": "rain100h", "image_id": ids, "psnr": psnr_a, "psnr_convention": PSNR_RGB,
                      "lpips": lpips_a, "lpips_convention": LPIPS, "wall_time_s": 0.1})
    b = a.copy()
    b["psnr"] = psnr_a + delta + rng.normal(0, 0.2, n)
    b["lpips"] = lpips_a - delta / 25 + rng.normal(0, 0.004, n)
    return a, b


def _write(tmp_path: Path, name: str, frame: pd.DataFrame, summary: pd.DataFrame | None = None) -> Path:
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    if summary is not None:
        summary.to_csv(tmp_path / f"{name}_summary.csv", index=False)
    return path


# ----------------------------------------------------------------------------- statistics


def test_known_delta_is_recovered_with_ci_excluding_zero() -> None:
    a, b = _frames()
    r = C.compare_frames(a, b, "A", "B")
    psnr, lpips = r.row("psnr"), r.row("lpips")
    d = (b["psnr"] - a["psnr"]).to_numpy()
    assert psnr.n == N and psnr.delta == pytest.approx(d.mean(), abs=1e-12)
    assert psnr.ci_low < TRUE_DELTA < psnr.ci_high and psnr.ci_low > 0  # contains the truth, excludes 0
    assert psnr.ci_low < psnr.delta < psnr.ci_high
    # the percentile bootstrap of a mean is close to the normal interval mean +- 1.96 sd / sqrt(n) (within 15%)
    half = 1.96 * d.std(ddof=1) / np.sqrt(N)
    assert (psnr.ci_high - psnr.ci_low) / 2 == pytest.approx(half, rel=0.15)
    assert psnr.p_value < 1e-6 and (psnr.wins, psnr.ties, psnr.losses) == (N, 0, 0)
    assert lpips.lower_better and lpips.delta < 0 and lpips.ci_high < 0 and lpips.wins > 35
    assert psnr.convention == PSNR_RGB
    assert r.method["bootstrap_resamples"] == 10_000 and r.method["bootstrap_seed"] == 0


def test_small_effect_ci_contains_zero() -> None:
    a, b = _frames(delta=0.0, seed=3)
    row = C.compare_frames(a, b).row("psnr")
    assert row.ci_low < 0 < row.ci_high and row.p_value > 0.05


def test_identical_files_give_zero_delta_and_p_one() -> None:
    a, _ = _frames()
    r = C.compare_frames(a, a.copy())
    for row in r.rows:
        assert row.delta == 0 and row.ci_low == 0 and row.ci_high == 0
        assert row.p_value == 1.0 and (row.wins, row.ties, row.losses) == (0, N, 0)


def test_bootstrap_is_seeded_and_reproducible() -> None:
    d = np.random.default_rng(0).normal(1, 1, 30)
    assert C.bootstrap_ci(d) == C.bootstrap_ci(d)
    assert C.bootstrap_ci(d) != C.bootstrap_ci(d, seed=1)


# ----------------------------------------------------------------------------- refusals


def test_no_common_images_refused() -> None:
    a, b = _frames()
    b["image_id"] = "x" + b["image_id"]
    with pytest.raises(BenchError, match="no image in common"):
        C.compare_frames(a, b)


def test_different_image_sets_list_what_is_missing_and_intersect_proceeds() -> None:
    a, b = _frames()
    b = b[~b["image_id"].isin(["039", "040"])].copy()
    b.loc[b.index[0], "image_id"] = "extra"
    with pytest.raises(BenchError) as info:
        C.compare_frames(a, b, "A.csv", "B.csv")
    msg = info.value.message
    assert "B.csv lacks 3 of A.csv's images" in msg and "'rain100h/039'" in msg and "'rain100h/040'" in msg
    assert "A.csv lacks 1 of B.csv's images ('rain100h/extra')" in msg
    assert "--intersect" in (info.value.fix or "")
    r = C.compare_frames(a, b, "A.csv", "B.csv", intersect=True)
    assert r.n_common == N - 3 and r.row("psnr").n == N - 3
    assert r.only_a == ["rain100h/001", "rain100h/039", "rain100h/040"] and r.only_b == ["rain100h/extra"]
    assert any("37 common images" in note for note in r.notes)


def test_different_conventions_refused() -> None:
    a, b = _frames()
    b["psnr_convention"] = PSNR_Y
    with pytest.raises(BenchError, match="psnr was computed differently") as info:
        C.compare_frames(a, b)
    assert "y-pyiqa-rounded|range=255" in info.value.message and "rgb|range=1" in info.value.message


def test_missing_convention_refused_and_version_change_noted() -> None:
    a, b = _frames()
    with pytest.raises(BenchError, match="does not state the psnr convention"):
        C.compare_frames(a, b.drop(columns=["psnr_convention"]))
    b["psnr_convention"] = PSNR_RGB.replace("0.1.16", "0.1.17")
    r = C.compare_frames(a, b)
    assert any("different implementation versions" in n for n in r.notes)
    mixed = a.copy()
    mixed.loc[0, "psnr_convention"] = PSNR_Y
    with pytest.raises(BenchError, match="mixes 2 conventions"):
        C.compare_frames(mixed, b)


def test_duplicates_and_missing_ids_refused(tmp_path: Path) -> None:
    a, b = _frames()
    with pytest.raises(DataError, match="more than once"):
        C.compare_frames(pd.concat([a, a.iloc[:1]]), b)
    with pytest.raises(DataError, match="no image id column"):
        C.compare_frames(a.drop(columns=["image_id"]), b)
    with pytest.raises(BenchError, match="share no metric"):
        C.compare_frames(a[["dataset", "image_id"]], b[["dataset", "image_id"]])
    with pytest.raises(DataError, match="does not exist"):
        C.compare_files(tmp_path / "nope.csv", tmp_path / "nope.csv")


# ----------------------------------------------------------------------------- set level and formats


def _summaries() -> tuple[pd.DataFrame, pd.DataFrame]:
    sa = pd.DataFrame([{"metric": "psnr", "value": 25.0, "n": N, "convention": PSNR_RGB},
                       {"metric": "fid", "value": 80.0, "n": N, "convention": FID}])
    sb = sa.copy()
    sb.loc[1, "value"] = 70.0
    return sa, sb


def test_fid_from_summaries_is_shown_without_ci(tmp_path: Path) -> None:
    a, b = _frames()
    sa, sb = _summaries()
    r = C.compare_files(_write(tmp_path, "a", a, sa), _write(tmp_path, "b", b, sb))
    fid = r.row("fid")
    assert fid.level == "set" and fid.delta == -10.0 and fid.n == N and fid.lower_better
    assert fid.ci_low is None and fid.p_value is None and fid.wins is None
    md = C.format_result(r, "md")
    fid_line = next(line for line in md.splitlines() if line.startswith("| fid "))
    assert "- (set-level)" in fid_line and "-10.0000" in fid_line
    # a set-level value from different image sets is never compared
    r2 = C.compare_frames(a, b.iloc[:-1], intersect=True, summary_a=sa, summary_b=sb)
    assert all(row.metric != "fid" for row in r2.rows) and any("Set-level" in n for n in r2.notes)


def test_formats(tmp_path: Path) -> None:
    a, b = _frames()
    r = C.compare_frames(a, b, "a_dir/run_A.csv", "run_B.csv")
    md = C.format_result(r, "md")
    assert md.startswith("| metric | better |") and "10,000 resamples, seed 0" in md and "rgb\\|range=1" in md
    tex = C.format_result(r, "latex")
    assert "\\begin{tabular}" in tex and "$\\uparrow$" in tex and "run\\_B.csv" in tex and "\\textbar{}" in tex
    js = json.loads(C.format_result(r, "json"))
    assert js["method"]["bootstrap_resamples"] == 10_000 and js["method"]["bootstrap_seed"] == 0
    assert {row["metric"] for row in js["rows"]} == {"psnr", "lpips"}
    frame = pd.read_csv(StringIO(C.format_result(r, "csv")))
    assert list(frame["metric"]) == ["psnr", "lpips"] and set(frame["bootstrap_seed"]) == {0}
    assert frame.loc[0, "delta"] == pytest.approx(r.row("psnr").delta)
    assert C.format_result(r, "rich").row_count == 2
    with pytest.raises(BenchError, match="Unknown output format"):
        C.format_result(r, "html")


# ----------------------------------------------------------------------------- CLI


def test_cli_compare_formats_and_exit_codes(tmp_path: Path) -> None:
    a, b = _frames()
    pa, pb = _write(tmp_path, "a", a), _write(tmp_path, "b", b)
    runner = CliRunner()
    ok = runner.invoke(cli.app, ["compare", str(pa), str(pb), "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["rows"][0]["metric"] == "psnr"
    for fmt in ("md", "latex", "csv", "rich"):
        res = runner.invoke(cli.app, ["compare", str(pa), str(pb), "--format", fmt])
        assert res.exit_code == 0 and "psnr" in res.stdout, (fmt, res.output)
    short = _write(tmp_path, "short", b.iloc[:-2])
    refused = runner.invoke(cli.app, ["compare", str(pa), str(short)])
    assert refused.exit_code != 0 and isinstance(refused.exception, BenchError)
    assert runner.invoke(cli.app, ["compare", str(pa), str(short), "--intersect", "--format", "md"]).exit_code == 0
    bad = runner.invoke(cli.app, ["compare", str(pa), str(pb), "--format", "html"])
    assert bad.exit_code != 0


def test_cli_main_prints_one_sentence_and_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _frames()
    b["psnr_convention"] = PSNR_Y
    monkeypatch.setattr(sys, "argv", ["bench", "compare", str(_write(tmp_path, "a", a)), str(_write(tmp_path, "b", b))])
    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit) as info:
        cli.main()
    out = capsys.readouterr()
    text = out.out + out.err
    assert info.value.code == 2
    assert "Error:" in text and "computed differently" in text and "Traceback" not in text


# ----------------------------------------------------------------- bench evaluate (writes what compare reads)


def _pngs(folder: Path, names: list[str], seed: int, shape: tuple[int, int] = (36, 44)) -> dict[str, np.ndarray]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = {}
    for name in names:
        img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        Image.fromarray(img).save(folder / f"{name}.png")
        images[name] = img
    return images


def test_cli_evaluate_pairs_by_name_uses_the_dataset_convention_and_feeds_compare(tmp_path: Path) -> None:
    import torch
    from PIL import Image

    from bench.evaluate.metrics import build_metric

    target = _pngs(tmp_path / "gt", ["1", "2", "3"], seed=0)
    for i, (src, seed) in enumerate([("pa", 1), ("pb", 2)]):
        folder = tmp_path / src
        _pngs(folder, ["1", "2", "3"], seed=seed)
        if i == 1:  # B: the ground truth plus mild noise, so B beats A on every image
            for name, img in target.items():
                noisy = np.clip(img.astype(int) + np.random.default_rng(3).integers(-8, 9, img.shape), 0, 255)
                Image.fromarray(noisy.astype(np.uint8)).save(folder / f"{name}.png")
    runner = CliRunner()
    for src in ("pa", "pb"):
        res = runner.invoke(cli.app, ["evaluate", "--pred", str(tmp_path / src), "--target", str(tmp_path / "gt"),
                                      "--dataset", "rain100h", "--metrics", "psnr,ssim", "--device", "cpu",
                                      "--out", str(tmp_path / f"{src}.csv")])
        assert res.exit_code == 0, res.output
    rows = pd.read_csv(tmp_path / "pb.csv", dtype={"image_id": str})
    assert list(rows["image_id"]) == ["1", "2", "3"] and set(rows["dataset"]) == {"rain100h"}
    assert all(c.startswith("y-matlab-double|") for c in rows["psnr_convention"])  # Rain100H: unrounded Y
    pred = torch.from_numpy(np.array(Image.open(tmp_path / "pb" / "2.png"))).permute(2, 0, 1)
    gt = torch.from_numpy(target["2"]).permute(2, 0, 1)
    direct = build_metric("psnr", "y-matlab-double")(pred[None].float() / 255, gt[None].float() / 255)
    assert rows.loc[1, "psnr"] == pytest.approx(direct, abs=1e-6)
    summary = pd.read_csv(tmp_path / "pb_summary.csv")
    assert set(summary["metric"]) == {"psnr", "ssim"} and set(summary["n"]) == {3}
    res = runner.invoke(cli.app, ["compare", str(tmp_path / "pa.csv"), str(tmp_path / "pb.csv"), "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    psnr = next(r for r in out["rows"] if r["metric"] == "psnr")
    assert psnr["n"] == 3 and psnr["wins"] == 3 and psnr["delta"] > 10


def test_cli_evaluate_fid_is_set_level_with_n(tmp_path: Path) -> None:
    _pngs(tmp_path / "gt", ["a", "b"], seed=0, shape=(32, 40))
    _pngs(tmp_path / "pred", ["a", "b"], seed=1, shape=(32, 40))
    res = CliRunner().invoke(cli.app, ["evaluate", "--pred", str(tmp_path / "pred"), "--target", str(tmp_path / "gt"),
                                       "--dataset", "lol", "--metrics", "psnr,lpips,fid", "--device", "cpu",
                                       "--out", str(tmp_path / "r.csv")])
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(tmp_path / "r.csv")
    assert "fid" not in rows.columns and rows["psnr_convention"].str.startswith("rgb-iat|").all()  # LOL: IAT
    assert {"lpips", "lpips_convention"} <= set(rows.columns)
    fid = pd.read_csv(tmp_path / "r_summary.csv").set_index("metric").loc["fid"]
    assert fid["n"] == 2 and np.isfinite(fid["value"]) and "pool3-2048" in fid["convention"]


@pytest.mark.parametrize("case", ["unpaired", "missing_dir", "classification_set", "unknown_dataset", "refused_is"])
def test_cli_evaluate_refusals(case: str, tmp_path: Path) -> None:
    _pngs(tmp_path / "gt", ["1", "2"], seed=0, shape=(16, 16))
    _pngs(tmp_path / "pred", ["1", "2"] + (["3"] if case == "unpaired" else []), seed=1, shape=(16, 16))
    args = {"--pred": str(tmp_path / ("nowhere" if case == "missing_dir" else "pred")),
            "--target": str(tmp_path / "gt"), "--dataset": "dense_haze", "--metrics": "psnr",
            "--out": str(tmp_path / "r.csv"), "--device": "cpu"}
    if case == "classification_set":
        args["--dataset"] = "cub"
    if case == "unknown_dataset":
        args["--dataset"] = "dense_hze"
    if case == "refused_is":
        args["--metrics"] = "psnr,is"
    res = CliRunner().invoke(cli.app, ["evaluate", *[x for kv in args.items() for x in kv]])
    assert res.exit_code != 0 and isinstance(res.exception, BenchError), res.output
    expected = {"unpaired": f"no partner by file name (only in {tmp_path / 'pred'}: '3')",
                "missing_dir": "does not exist",
                "classification_set": "not by image metrics", "unknown_dataset": "dense_haze",
                "refused_is": "Inception Score"}[case]
    assert expected in str(res.exception)
    assert not (tmp_path / "r.csv").exists()


# ----------------------------------------------------------------------------- files from other tools


@pytest.mark.parametrize("id_col", ["image", "name", "file", "filename", "Image"])
def test_foreign_id_columns_pair_by_file_name_without_folder_or_extension(id_col: str) -> None:
    a, b = _frames()
    foreign = b.drop(columns=["dataset", "image_id"]).assign(**{id_col: [f"results/x4/{i}.png" for i in a["image_id"]]})
    foreign = foreign.rename(columns={"psnr": "PSNR"})  # other tools capitalise; columns pair case-insensitively
    r = C.compare_frames(a.drop(columns=["dataset"]), foreign, "A", "B")
    assert r.n_common == N and r.row("psnr").delta == pytest.approx((b["psnr"] - a["psnr"]).mean(), abs=1e-12)
    assert "file name without folders or image extension" in r.method["pairing"]


def test_id_column_option_and_extension_rules() -> None:
    a, b = _frames()
    other = b.drop(columns=["image_id"]).assign(img=[f"{i}.JPG" for i in a["image_id"]])
    with pytest.raises(DataError, match="no image id column") as info:
        C.compare_frames(a, other)
    assert "--id-column" in (info.value.fix or "")
    assert C.compare_frames(a, other, id_column="img").n_common == N
    with pytest.raises(DataError, match="Neither A nor B has the column 'imgs'"):
        C.compare_frames(a, other, id_column="imgs")  # a name neither file has is a typo, not a fallback
    assert [C.image_key(v) for v in ("1.png", "a/b\\1.TIFF", "1", "img.001", "x/.png")] == ["1", "1", "1", "img.001",
                                                                                          ".png"]
    dup = b.assign(image_id=[f"{i}.png" for i in a["image_id"]])
    dup.loc[1, "image_id"] = "001.jpg"  # pairs with 001.png: the same image twice
    with pytest.raises(DataError, match=r"more than once, first: 'rain100h/001' \(from '001.png', '001.jpg'\)"):
        C.compare_frames(a, dup)


def test_unpaired_files_are_refused_naming_both_sides() -> None:
    a, b = _frames()
    b = b.assign(image_id=[f"{i}.png" for i in b["image_id"]]).iloc[:-1]
    b.loc[b.index[0], "image_id"] = "999.png"
    with pytest.raises(BenchError) as info:
        C.compare_frames(a, b, "runA.csv", "runB.csv")
    assert "runB.csv lacks 2 of runA.csv's images ('rain100h/001', 'rain100h/040')" in info.value.message
    assert "runA.csv lacks 1 of runB.csv's images ('rain100h/999')" in info.value.message


def test_metric_direction_known_settable_and_never_guessed() -> None:
    a, b = _frames()
    a["musiq"], b["musiq"] = 50.0, 51.0  # a standard no-reference name: higher is better
    a["sharpness"], b["sharpness"] = a["psnr"], b["psnr"]  # nobody knows this one's direction
    plain = C.compare_frames(a, b)
    assert not plain.row("musiq").lower_better and all(r.metric != "sharpness" for r in plain.rows)
    assert any("Not compared" in n and "sharpness" in n for n in plain.notes)  # ignored, and said so
    a["sharpness_convention"] = b["sharpness_convention"] = "ours|v1"  # stated as a metric: now it must be compared
    with pytest.raises(BenchError, match="higher or lower is better for sharpness") as info:
        C.compare_frames(a, b)
    assert "--higher-better sharpness" in (info.value.fix or "")
    higher = C.compare_frames(a, b, higher_better=["sharpness"])
    lower = C.compare_frames(a, b, lower_better=["sharpness", "PSNR"])
    assert higher.row("sharpness").wins == N and lower.row("sharpness").losses == N
    assert lower.row("psnr").lower_better and lower.row("psnr").losses == N
    with pytest.raises(BenchError, match="both higher- and lower-better"):
        C.compare_frames(a, b, higher_better=["psnr"], lower_better=["psnr"])


def test_legacy_y_convention_pairs_with_y_pyiqa_rounded() -> None:
    a, b = _frames()
    a["psnr_convention"], b["psnr_convention"] = PSNR_Y_LEGACY, PSNR_Y
    assert C.compare_frames(a, b).row("psnr").convention == PSNR_Y
    b["psnr_convention"] = "y-matlab-double|range=1|crop=0|q8|y-unrounded|bench-float64"
    with pytest.raises(BenchError, match="psnr was computed differently"):
        C.compare_frames(a, b)


# ----------------------------------------------------------------------------- output never cuts a number


def _numbers(result: C.CompareResult) -> list[str]:
    """Every number a reader needs, as the tables print it."""
    out = []
    for r in result.rows:
        out += [str(r.n), C._fmt(r.mean_a), C._fmt(r.mean_b), f"{r.delta:+.4f}"]
        if r.level == "image":  # set-level rows (FID) have no CI, test or wins
            out += [C._fmt(r.ci_low), C._fmt(r.ci_high), C._p(r.p_value), f"{r.wins}/{r.ties}/{r.losses}"]
    return out


def _assert_readable(text: str, result: C.CompareResult, width: int) -> None:
    assert "\u2026" not in text and "..." not in text  # rich's ellipsis, or any other shortening
    for number in _numbers(result):
        assert re.search(r"(?<![\d.])" + re.escape(number) + r"(?![\d])", text), number
    too_wide = [line for line in text.splitlines() if len(line) > width and " " in line.strip()]
    assert not too_wide, too_wide  # only an unbreakable path may overflow


def test_cli_output_at_80_columns_and_piped_cuts_no_number(tmp_path: Path) -> None:
    a, b = _frames()
    sa, sb = _summaries()
    pa, pb = _write(tmp_path, "a", a, sa), _write(tmp_path, "b", b, sb)
    expected = C.compare_files(pa, pb)
    env = os.environ | {"COLUMNS": "80", "PYTHONPATH": os.getcwd()}
    piped = subprocess.run([sys.executable, "-m", "bench.cli", "compare", str(pa), str(pb)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr
    print(piped.stdout)
    _assert_readable(piped.stdout, expected, 80)
    runner = CliRunner()
    for fmt in ("rich", "plain"):
        res = runner.invoke(cli.app, ["compare", str(pa), str(pb), "--format", fmt], env={"COLUMNS": "80"})
        assert res.exit_code == 0, res.output
        _assert_readable(res.stdout, expected, 80)
    assert "fid" in piped.stdout and "-10.0000" in piped.stdout  # the set-level row too


@pytest.mark.parametrize("width", [60, 80, 100, 250])
def test_rich_terminal_falls_back_to_text_when_narrow(width: int) -> None:
    from rich.console import Console

    a, b = _frames()
    result = C.compare_frames(a, b, "runs/a/per_image.csv", "runs/b/per_image.csv")
    console = Console(file=StringIO(), force_terminal=True, width=width, color_system=None)
    C.write_result(result, "rich", console)
    text = console.file.getvalue()
    _assert_readable(text, result, width)
    assert ("\u2503" in text or "\u2502" in text) == (width == 250)  # box drawing only when the whole table fits


# ----------------------------------------------------------------------------- folder mode on real Rain100H images


def _rain_folders(tmp_path: Path, ids: list[int]) -> tuple[Path, Path, Path]:
    """A = the rainy inputs, B = halfway to the clean image (a better 'restoration'), target = clean: real pixels."""
    from PIL import Image
    from support.shared import shared_path

    root = shared_path("data", "rain100h_crop")
    dirs = [tmp_path / d for d in ("runA", "runB", "gt")]
    for d in dirs:
        d.mkdir()
    for i in ids:
        rain = np.asarray(Image.open(root / "inputcrop" / f"{i}.png").convert("RGB"))
        clean = np.asarray(Image.open(root / "cleancrop" / f"{i}.png").convert("RGB"))
        Image.fromarray(rain).save(dirs[0] / f"{i}.png")
        Image.fromarray(((rain.astype(int) + clean) // 2).astype(np.uint8)).save(dirs[1] / f"{i}.png")
        Image.fromarray(clean).save(dirs[2] / f"{i}.png")
    return dirs[0], dirs[1], dirs[2]


def test_folder_mode_scores_both_runs_with_one_convention_on_real_rain100h(tmp_path: Path) -> None:

    from bench.data.base import read_image
    from bench.evaluate.metrics import build_metric

    ra, rb, gt = _rain_folders(tmp_path, [1, 8, 23])
    res = CliRunner().invoke(cli.app, ["compare", "--pred-a", str(ra), "--pred-b", str(rb), "--target", str(gt),
                                       "--dataset", "rain100h", "--metrics", "psnr,ssim", "--device", "cpu",
                                       "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    psnr = next(r for r in out["rows"] if r["metric"] == "psnr")
    assert psnr["n"] == 3 and psnr["wins"] == 3 and psnr["delta"] > 3
    assert psnr["convention"].startswith("y-matlab-double|")  # Rain100H's default, for both runs
    assert "y-matlab-double" in out["method"]["scoring"]
    metric = build_metric("psnr", "y-matlab-double")
    direct = [metric(read_image(ra / f"{i}.png")[None], read_image(gt / f"{i}.png")[None]) for i in (1, 8, 23)]
    assert psnr["mean_a"] == pytest.approx(float(np.mean(direct)), abs=1e-9)
    rounded = CliRunner().invoke(cli.app, ["compare", "--pred-a", str(ra), "--pred-b", str(rb), "--target", str(gt),
                                           "--dataset", "rain100h", "--convention", "y-pyiqa-rounded", "--device",
                                           "cpu", "--format", "json"])
    assert json.loads(rounded.stdout)["rows"][0]["convention"].startswith("y-pyiqa-rounded|")


@pytest.mark.parametrize("case", ["a_vs_b", "b_vs_target", "mixed_modes", "missing_target"])
def test_folder_mode_refusals_name_both_sides(case: str, tmp_path: Path) -> None:
    ra, rb, gt = _rain_folders(tmp_path, [2, 3])
    if case == "a_vs_b":
        (rb / "3.png").rename(rb / "4.png")
    if case == "b_vs_target":
        for d in (ra, rb):
            (d / "3.png").unlink()
    args = ["compare", "--pred-a", str(ra), "--pred-b", str(rb), "--dataset", "rain100h", "--device", "cpu"]
    args += [] if case == "missing_target" else ["--target", str(gt)]
    args += ["x.csv"] if case == "mixed_modes" else []
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code != 0 and isinstance(res.exception, BenchError), res.output
    msg = str(res.exception)
    expected = {"a_vs_b": [f"only in {ra}: '3'", f"only in {rb}: '4'"],
                "b_vs_target": [f"only in {gt}: '3'"],
                "mixed_modes": ["not both"], "missing_target": ["needs --target"]}[case]
    for part in expected:
        assert part in msg, msg
