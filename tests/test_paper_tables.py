"""tables/paper/*.csv hold every number of the paper's Tables 1-4, checked against the paper's text."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from support.shared import shared_path

from bench.paper import NUMBERS_DIR as PAPER_DIR
from bench.paper import paper_numbers


def _paper_md() -> str:
    return shared_path("paper", "diffloss_eccv2024.md").read_text()


def _table_block(md: str, caption: str) -> list[list[str]]:
    """The rows of the first Markdown table after ``caption``, split into cells."""
    start = md.index(caption)
    rows = []
    for line in md[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows


def _numbers(cells: list[str]) -> list[float]:
    return [float(c) for c in cells if re.fullmatch(r"\d+(\.\d+)?", c)]


def test_table1_every_cell() -> None:
    rows = _table_block(_paper_md(), "**Table 1:**")
    data = [r for r in rows if len(_numbers(r)) == 6]
    assert len(data) == 7
    ours = paper_numbers("table1")
    for task_i, task in enumerate(("dehazing", "deraining", "lowlight")):
        sub = ours[ours.task == task].sort_values("row")
        assert len(sub) == 7
        for (_, mine), theirs in zip(sub.iterrows(), data, strict=True):
            nums = _numbers(theirs)[2 * task_i: 2 * task_i + 2]
            assert (mine.psnr, mine.ssim) == pytest.approx(nums, abs=1e-9), (task, mine.method)
    assert set(ours[ours.kind == "trained"].baseline) == {"fsdgn", "mb_taylorformer", "rcdnet", "efderain",
                                                          "deeplpf", "iat"}


def test_table2_every_cell() -> None:
    rows = _table_block(_paper_md(), "**Table 2:**")
    data = {r[0]: _numbers(r) for r in rows if len(_numbers(r)) == 6}
    ours = paper_numbers("table2")
    for config, nums in data.items():
        sub = ours[ours.config == config].set_index("task")
        got = [sub.loc[t, k] for t in ("dehazing", "deraining", "lowlight") for k in ("top1_v", "top1_r")]
        assert got == pytest.approx(nums, abs=1e-9)
    assert len(data) == 2 and len(ours) == 6


def test_table3_every_cell() -> None:
    rows = _table_block(_paper_md(), "**Table 3:**")
    data = {r[0]: _numbers(r) for r in rows if len(_numbers(r)) == 3}
    ours = paper_numbers("table3").set_index("label")
    assert set(data) == set(ours.index)
    for label, nums in data.items():
        assert [ours.loc[label, k] for k in ("lpips", "psnr", "ssim")] == pytest.approx(nums, abs=1e-9)


def test_table4_every_cell() -> None:
    rows = _table_block(_paper_md(), "**Table 4:**")
    data = [_numbers(r) for r in rows if len(_numbers(r)) == 3]
    ours = paper_numbers("table4").sort_values("row")
    assert len(data) == len(ours) == 3
    for (_, mine), nums in zip(ours.iterrows(), data, strict=True):
        assert [mine.fid, mine.psnr, mine.ssim] == pytest.approx(nums, abs=1e-9)
    assert list(ours.variant) == ["x0", "xprev", "eps"]


def test_paper_csvs_have_no_empty_metric_cells() -> None:
    for n, cols in ((1, ["psnr", "ssim"]), (2, ["top1_v", "top1_r"]), (3, ["lpips", "psnr", "ssim"]),
                    (4, ["fid", "psnr", "ssim"])):
        frame = pd.read_csv(PAPER_DIR / f"table{n}.csv")
        assert frame[cols].notna().all().all(), n
