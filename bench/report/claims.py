"""``tables/claims.md``: every quantitative claim of the paper, one line each, with our value and a verdict.

Each paper module declares its claims (:class:`Claim`) and judges them from its results and
per-image values with the rules here (:func:`gain_verdict`, :func:`order_verdict`); its render
job writes ``claims_<target>.md`` (:func:`write_claims`), and publishing merges every such file
in the tables folder into ``claims.md`` (:func:`merge_claims`), whose header states the rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bench.evaluate.stats import MAX_SEEDS, METHOD, Z80, Z95, PairedGain, SeedPlan
from bench.report.common import PAPER_CITATION, run_kind
from bench.report.formats import gain_text
from bench.report.layout import MetricCol

REPRODUCED, NOT_SIGNIFICANT, CONTRADICTED = "reproduced", "not significant", "contradicted"
NOT_TESTABLE, NOT_RUN, NOT_A_REPRODUCTION = "not testable", "not run", "not a reproduction"
VERDICTS = (REPRODUCED, NOT_SIGNIFICANT, CONTRADICTED, NOT_TESTABLE, NOT_RUN, NOT_A_REPRODUCTION)
#: The order in which claims.md lists the targets' files (any other target follows, by name).
TARGET_ORDER = ("table1", "table2", "table3", "table4", "figure7")
MARKER = re.compile(r"<!-- claims target=(\S+) profile=(\S+) comparable=(true|false) -->")

RULES = [
    "Gain claims (the paper's row B beats its row A on a metric): ours is the paired difference B − A over the "
    "same test images (method below). reproduced: our 95% interval excludes 0 in the paper's direction and the "
    "Wilcoxon p < 0.05; contradicted: both say the other direction; not significant: otherwise (the interval holds "
    "0, or the test does not reach 0.05, as it never can on Dense-Haze's 5 test images with one seed). The verdict "
    "is about the direction; \"why\" says whether the paper's own difference lies inside our interval.",
    "Ordering claims (the paper's rows ordered on a metric, e.g. DiffLoss best of four, or (c) > (b) > (a)): each "
    "listed pair is a gain claim. reproduced: every pair reproduced; contradicted: any pair contradicted; "
    "not significant: otherwise (the order may hold in the means, but some pair is not significant).",
    "Figure 7's best gamma (the paper: \"optimal performance with loss weight gamma in [0.0005, 0.005]\", "
    "0.001 chosen): the best in-range gamma by our mean PSNR against the best out-of-range gamma (0 or 0.01), "
    "paired, as a gain claim: reproduced if the in-range one is better (interval excluding 0, p < 0.05), "
    "contradicted if the out-of-range one is, not significant otherwise.",
    "not testable: a set-level metric (FID: one value per test set, no per-image interval; below N = 10,000 not "
    "comparable with the paper's at all) or a single paired image.",
    "not run: the rows a claim needs are not in this run (why: e.g. --baseline kept other rows).",
    "not a reproduction: a smoke, truncated or rehearsal run, or a data subset; our numbers and interval are "
    "shown (they test the path), the paper is not judged by them.",
    METHOD,
]


@dataclass(frozen=True)
class Claim:
    """One quantitative claim of the paper: an id, what it says, and the paper's value(s)."""

    id: str
    text: str
    paper: str


@dataclass
class Verdict:
    claim: Claim
    ours: str
    verdict: str
    why: str = ""
    #: Gain claims with per-image data: how many seeds would resolve the paper's gain (``bench.evaluate.stats``).
    plan: SeedPlan | None = None
    extra: dict[str, str] = field(default_factory=dict)
    fmt: str = "{:.3f}"  # the metric's number format (the seeds section's gains and spreads)


def _reading(g: PairedGain, paper_says_better: bool = True) -> str:
    """reproduced / contradicted / not significant for the paper's "B beats A" (or "B is worse") from B - A."""
    if g.direction == "n.s.":
        return NOT_SIGNIFICANT
    return REPRODUCED if (g.direction == "better") == paper_says_better else CONTRADICTED


def gain_verdict(claim: Claim, g: PairedGain | None, col: MetricCol, comparable: bool, paper_diff: float | None,
                 missing: str = "the rows this claim needs are not in this run", plan: SeedPlan | None = None
                 ) -> Verdict:
    """The verdict on the paper's B - A = ``paper_diff`` on ``col`` from our paired B - A (``g``).

    The paper's sign says which way it claims (a gain for every claim the paper makes; a loss would be
    judged the same way, in its own direction).
    """
    if g is None:
        return Verdict(claim, "–", NOT_RUN, missing)
    ours = gain_text(g, col) + (f"; n={g.n_images} images, K={g.n_seeds}" if g.level == "image" else "")
    if g.level == "set":
        return Verdict(claim, ours, NOT_TESTABLE, "set-level metric: one value per test set, no per-image interval"
                       + (f"; N below {col.min_n:,}: not comparable with the paper's" if col.min_n else ""))
    if not g.has_interval:
        return Verdict(claim, ours, NOT_TESTABLE, "one paired image: no interval", plan=plan)
    says_better = paper_diff is None or (paper_diff > 0) == col.higher_better
    reading = _reading(g, says_better)
    inside = g.holds(paper_diff) if paper_diff is not None else None
    why = "" if inside is None else ("the paper's difference is inside our interval" if inside
                                     else "the paper's difference is outside our interval")
    if not comparable:
        return Verdict(claim, ours, NOT_A_REPRODUCTION, f"our interval alone would read: {reading}", plan=plan,
                       fmt=col.fmt)
    return Verdict(claim, ours, reading, why, plan=plan, fmt=col.fmt)


def order_verdict(claim: Claim, pairs: list[tuple[str, PairedGain | None]], col: MetricCol, comparable: bool,
                  missing: str = "the rows this claim needs are not in this run") -> Verdict:
    """The verdict on an ordering: each (label, B - A) pair must be a reproduced gain (rules in :data:`RULES`)."""
    if any(g is None for _, g in pairs):
        absent = ", ".join(label for label, g in pairs if g is None)
        return Verdict(claim, "–", NOT_RUN, f"{missing} ({absent})")
    parts = [f"{label}: {gain_text(g, col)}" for label, g in pairs]
    ours = "; ".join(parts)
    if any(g.level == "set" for _, g in pairs):  # type: ignore[union-attr]
        return Verdict(claim, ours, NOT_TESTABLE, "set-level metric: one value per test set, no per-image interval"
                       + (f"; N below {col.min_n:,}: not comparable with the paper's" if col.min_n else ""))
    if any(not g.has_interval for _, g in pairs):  # type: ignore[union-attr]
        return Verdict(claim, ours, NOT_TESTABLE, "one paired image: no interval")
    readings = [_reading(g) for _, g in pairs]  # type: ignore[arg-type]
    reading = (CONTRADICTED if CONTRADICTED in readings else REPRODUCED if all(r == REPRODUCED for r in readings)
               else NOT_SIGNIFICANT)
    why = ", ".join(f"{label} {r}" for (label, _), r in zip(pairs, readings))
    if not comparable:
        return Verdict(claim, ours, NOT_A_REPRODUCTION, f"our intervals alone would read: {reading} ({why})")
    return Verdict(claim, ours, reading, why)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _k_text(k: int | None, plan: SeedPlan, target: float) -> str:
    if k is None:
        if not plan.testable:
            return f"never (n = {plan.n_images})"
        return "never" if plan.floor >= target else f"> {MAX_SEEDS}"
    return f"≥ {k}" if plan.lower_bound else str(k)


def seeds_section(verdicts: list[Verdict], comparable: bool = True) -> list[str]:
    """How many seeds would resolve each claimed gain, from the spread this run measured (formula stated)."""
    planned = [v for v in verdicts if v.plan is not None]
    if not planned:
        return []
    caveat = [] if comparable else ["> The spread is this run's (not a reproduction): it sizes the paper profile "
                                    "only as far as its networks and test images resemble the paper's.", ""]
    out = ["### Seeds needed to resolve the paper's gains", "", *caveat,
           "From this run's per-image paired differences (d = B − A per seed and image, n images, K seeds): "
           "h(K) = 1.96 · sqrt(v_image / n + v_seed / K + v_resid / (n K)), where v_image is the variance of the "
           "image effect (the same test images under every seed, so it does not shrink with K), v_seed the "
           "between-seed variance of the mean difference and v_resid the image × seed interaction (method of "
           "moments on the K × n table). Seeds needed: the smallest K with h(K) < |paper's gain| (an observed gain "
           "of that size would exclude 0); for 80% power, h(K) < |gain| · 1.96 / (1.96 + 0.84). With K = 1 only "
           "s_d (the sd of d) is measured: h(K) = 1.96 · s_d / sqrt(n K) gives the fewest seeds that could do "
           "(\"≥\"), since an unmeasured seed spread only adds. \"never\": the image term alone is wider than the "
           "gain on this test set, or (\"never (n = 5)\") the test set is too small for the signed-rank test a gain "
           "also needs to reach p < 0.05 (n ≤ 5 images: smallest p 2 / 2^n); more test images, not seeds, would be "
           "needed.", "",
           "| claim | paper's gain | n | K | s_d | v_image / v_seed / v_resid | h now | seeds (95% excl. 0) | "
           "seeds (80% power) |", "|---|---|---|---|---|---|---|---|---|"]
    for v in planned:
        p: SeedPlan = v.plan  # type: ignore[assignment]
        f = v.fmt
        comps = "–" if p.v_resid is None else " / ".join(f"{x:.3g}" for x in (p.v_image, p.v_seed, p.v_resid))
        out.append(f"| {_cell(v.claim.text)} | {f.format(p.gain)} | {p.n_images} | {p.n_seeds} | {f.format(p.s_d)} | "
                   f"{comps} | {f.format(p.half_width_now)} | {_k_text(p.seeds, p, p.gain)} | "
                   f"{_k_text(p.seeds_80, p, p.gain * Z95 / (Z95 + Z80))} |")
    return [*out, ""]


def render_claims(target: str, heading: str, verdicts: list[Verdict], profile: str, comparable: bool,
                  notes: list[str] | None = None) -> str:
    """The body of ``claims_<target>.md`` (a marker line, then its section of ``claims.md``)."""
    prefix = "" if comparable else f"[{run_kind(profile)} RUN, not a reproduction] "
    out = [f"<!-- claims target={target} profile={profile} comparable={'true' if comparable else 'false'} -->",
           f"## {prefix}{heading}", ""]
    if not comparable:
        out += [f"> {run_kind(profile)} run (profile '{profile}'): every verdict is \"not a reproduction\"; the "
                "interval is this run's own.", ""]
    out += ["| claim | paper | ours (95% interval) | verdict | why |", "|---|---|---|---|---|"]
    out += [f"| {_cell(v.claim.text)} | {_cell(v.claim.paper)} | {_cell(v.ours)} | **{v.verdict}** | "
            f"{_cell(v.why)} |" for v in verdicts]
    out.append("")
    out += seeds_section(verdicts, comparable)
    out += [f"- {n}" for n in notes or []]
    return "\n".join(out).rstrip() + "\n"


def write_claims(out_dir: Path, target: str, heading: str, verdicts: list[Verdict], profile: str,
                 comparable: bool, notes: list[str] | None = None) -> str:
    """Write ``claims_<target>.md`` in ``out_dir``; returns its file name (for the render job's files)."""
    from bench.io import write_text

    name = f"claims_{target}.md"
    write_text(out_dir / name, render_claims(target, heading, verdicts, profile, comparable, notes))
    return name


def _order(path: Path) -> tuple[int, str]:
    target = path.stem.removeprefix("claims_")
    return (TARGET_ORDER.index(target) if target in TARGET_ORDER else len(TARGET_ORDER), target)


def merged_claims(parts: list[str]) -> str:
    """``claims.md`` from the bodies of the ``claims_<target>.md`` files: the rules, then each section."""
    runs = [m.groups() for m in (MARKER.search(p) for p in parts) if m]
    apart = [run_kind(profile) for _, profile, comp in runs if comp == "false"]
    kinds = "/".join(sorted(set(apart)))
    if not apart:
        prefix = ""
    elif len(apart) < len(runs):
        prefix = f"[partly {kinds} RUNS, not a reproduction: see each section] "
    else:
        prefix = f"[{kinds} RUN{'S' if '/' in kinds else ''}, not a reproduction] "
    out = [f"# {prefix}The paper's quantitative claims and our verdicts", "",
           f"Paper: {PAPER_CITATION}. One line per claim: the paper's value, ours with its 95% interval, and a "
           f"verdict ({', '.join(VERDICTS)}). Each section is written by its table's render job "
           "(`claims_<target>.md`) and this file by publishing, from every such file in this folder.", "",
           "Rules:", *[f"- {r}" for r in RULES], ""]
    for p in parts:
        out += [MARKER.sub("", p).strip(), ""]
    return "\n".join(out).rstrip() + "\n"


def merge_claims(tables_dir: Path) -> Path | None:
    """Write ``claims.md`` in ``tables_dir`` from its ``claims_<target>.md`` files (None when there are none)."""
    from bench.io import write_text

    files = sorted(tables_dir.glob("claims_*.md"), key=_order)
    if not files:
        return None
    target = tables_dir / "claims.md"
    write_text(target, merged_claims([f.read_text(encoding="utf-8") for f in files]))
    return target
