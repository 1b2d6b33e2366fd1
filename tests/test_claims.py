"""``claims.md``: every quantitative claim of the paper, one line each, with a verdict by the stated rules.

Built from constructed results and per-image frames (``support.constructed``: the DiffLoss rows better
by a known amount, every other pair exactly equal on average), so each verdict is known in advance.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support.constructed import constructed

from bench.paper import figure7, table1, table2, table3, table4
from bench.report.claims import (
    CONTRADICTED,
    NOT_A_REPRODUCTION,
    NOT_RUN,
    NOT_SIGNIFICANT,
    NOT_TESTABLE,
    REPRODUCED,
    RULES,
    VERDICTS,
    merge_claims,
    write_claims,
)

MODULES = {"table1": table1, "table2": table2, "table3": table3, "table4": table4, "figure7": figure7}
#: Table 1: 6 networks x PSNR, SSIM; Table 2: 3 degradations x 2 classifiers; Table 3: 3 metrics x 2 checkpoint
#: rules; Table 4: the order on FID, PSNR, SSIM; Figure 7: the best gamma x 2 checkpoint rules.
COUNTS = {"table1": 12, "table2": 6, "table3": 6, "table4": 3, "figure7": 2}


def _verdicts(target: str, profile: str = "paper", effect: float = 1.0, **kw):
    results, per_image = constructed(target, profile=profile, effect=effect, **kw)
    reproduction = profile == "paper"
    return MODULES[target].claims(results, per_image, profile, reproduction), results, per_image


def _publish_claims(tmp_path: Path, profile: str = "paper") -> tuple[str, dict[str, list]]:
    all_verdicts = {}
    for target in MODULES:
        verdicts, _, _ = _verdicts(target, profile)
        write_claims(tmp_path, target, f"{target} heading", verdicts, profile, profile == "paper")
        all_verdicts[target] = verdicts
    path = merge_claims(tmp_path)
    assert path == tmp_path / "claims.md"
    return path.read_text(encoding="utf-8"), all_verdicts


def test_claims_md_lists_every_claim_with_a_verdict(tmp_path: Path) -> None:
    text, verdicts = _publish_claims(tmp_path)
    assert {t: len(v) for t, v in verdicts.items()} == COUNTS
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and "| **" in ln]
    assert len(rows) == sum(COUNTS.values())  # one line per claim, nothing else with a verdict
    for vs in verdicts.values():
        for v in vs:
            line = next(r for r in rows if r.startswith(f"| {v.claim.text} |"))
            assert f"| **{v.verdict}** |" in line and v.verdict in VERDICTS
            assert v.claim.paper.replace("|", "\\|") in line
    assert text.startswith("# The paper's quantitative claims and our verdicts")
    for rule in RULES:
        assert rule in text
    # the sections come in the paper's order
    heads = [ln for ln in text.splitlines() if ln.startswith("## ")]
    assert heads == [f"## {t} heading" for t in MODULES]


def test_verdicts_follow_the_rules_on_a_known_effect() -> None:
    t1, _, _ = _verdicts("table1")
    assert {v.verdict for v in t1} == {REPRODUCED}
    assert all(v.plan is not None and v.plan.n_images == 16 for v in t1)  # each gain sized for seeds
    contra, _, _ = _verdicts("table1", effect=-1.0)
    assert {v.verdict for v in contra} == {CONTRADICTED}
    none, _, _ = _verdicts("table1", effect=0.0)
    assert {v.verdict for v in none} == {NOT_SIGNIFICANT}
    # Table 4: (c) beats (b) by construction, (b) and (a) are equal on average: the order is not significant;
    # FID is set-level (one value per test set): not testable
    t4 = {v.claim.id: v for v in _verdicts("table4")[0]}
    assert t4["table4.psnr"].verdict == NOT_SIGNIFICANT and t4["table4.ssim"].verdict == NOT_SIGNIFICANT
    assert "(c) vs (b) reproduced, (b) vs (a) not significant" in t4["table4.psnr"].why
    assert t4["table4.fid"].verdict == NOT_TESTABLE
    t3 = _verdicts("table3")[0]
    assert {v.verdict for v in t3} == {REPRODUCED}  # DiffLoss beats each of the three others on every metric
    f7 = _verdicts("figure7")[0]
    assert {v.verdict for v in f7} == {REPRODUCED} and all("γ = 0.001" in v.ours for v in f7)


def test_an_ordering_with_a_pair_the_wrong_way_is_contradicted() -> None:
    results, per_image = constructed("table4")
    x0 = per_image["loss_set"] == "diffloss_x0"
    per_image.loc[x0, "psnr"] += 2.0  # (a) now beats (b) by 2 dB on every image
    t4 = {v.claim.id: v for v in table4.claims(results, per_image, "paper", True)}
    assert t4["table4.psnr"].verdict == CONTRADICTED and "(b) vs (a) contradicted" in t4["table4.psnr"].why


def test_claims_without_their_rows_are_not_run() -> None:
    results, per_image = constructed("table1")
    keep = results["baseline"] != "fsdgn"
    verdicts = table1.claims(results[keep], per_image[per_image["baseline"] != "fsdgn"], "paper", True)
    fsdgn = [v for v in verdicts if ".fsdgn." in v.claim.id]
    assert len(fsdgn) == 2 and {v.verdict for v in fsdgn} == {NOT_RUN}
    assert all("fsdgn was not trained in this run" in v.why for v in fsdgn)
    assert {v.verdict for v in verdicts if v not in fsdgn} == {REPRODUCED}


def test_smoke_claims_are_titled_and_never_a_reproduction(tmp_path: Path) -> None:
    text, verdicts = _publish_claims(tmp_path, profile="smoke")
    assert text.startswith("# [SMOKE RUN, not a reproduction] The paper's quantitative claims")
    assert {v.verdict for vs in verdicts.values() for v in vs} <= {NOT_A_REPRODUCTION, NOT_TESTABLE}
    assert "our interval alone would read: reproduced" in text  # the run's own statistics are still shown
    assert text.count("## [SMOKE RUN, not a reproduction]") == len(MODULES)


def test_a_mixed_folder_says_so(tmp_path: Path) -> None:
    for target, profile in (("table1", "paper"), ("table4", "smoke")):
        verdicts, _, _ = _verdicts(target, profile)
        write_claims(tmp_path, target, target, verdicts, profile, profile == "paper")
    text = merge_claims(tmp_path).read_text(encoding="utf-8")
    assert text.startswith("# [partly SMOKE RUNS, not a reproduction: see each section]")
    assert "## table1" in text and "## [SMOKE RUN, not a reproduction] table4" in text


def test_publish_writes_claims_md_beside_the_tables(tmp_path: Path) -> None:
    from bench.pipeline import publish

    run = tmp_path / "run"
    run.mkdir()
    verdicts, _, _ = _verdicts("table4")
    files = ["table4.md", write_claims(run, "table4", "Table 4", verdicts, "paper", True)]
    (run / "table4.md").write_text("# Table 4\n")

    class Store:  # publish needs a done record and the job's folder
        def done_record(self, job):
            return {"result": {"files": files}}

        def dir(self, job):
            return run

    tables = tmp_path / "tables"
    out = publish(object(), Store(), tables)  # type: ignore[arg-type]
    assert [p.name for p in out] == ["table4.md", "claims_table4.md", "claims.md"]
    assert "GridDehazeNet on Dense-Haze: (c) > (b) > (a) on PSNR" in (tables / "claims.md").read_text()


@pytest.mark.parametrize("target", list(MODULES))
def test_claims_without_per_image_values_say_why(target: str) -> None:
    results, _ = constructed(target)
    verdicts = MODULES[target].claims(results, None, "paper", True)
    assert len(verdicts) == COUNTS[target]
    for v in verdicts:
        assert v.verdict in (NOT_RUN, NOT_TESTABLE), v
        if v.verdict == NOT_RUN:
            assert "no per-image values" in v.why


def test_every_claim_id_is_unique() -> None:
    ids = [v.claim.id for t in MODULES for v in _verdicts(t)[0]]
    assert len(ids) == len(set(ids)) == sum(COUNTS.values())
    assert pd.Series(ids).str.match(r"^(table[1-4]|figure7)\.").all()
