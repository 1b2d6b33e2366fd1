"""Markdown and LaTeX (booktabs) renderings of a :class:`~bench.report.layout.Layout`.

Each metric shows three columns: ours, the paper's, and the difference. The difference
is printed only for paper-profile runs; smoke and truncated runs print "n/c" (not
comparable) there and carry a banner saying they are not reproductions. A set-level
metric (FID, KID) shows its N, and below its ``min_n`` (FID: 10,000) it is never compared
with the paper ("N<10000") nor bold.

Under a line with gain rows comes one sub-row per partner: our paired difference with its
interval, Wilcoxon p and W/T/L in the "ours" column ("better" / "worse" only when the interval
excludes 0 that way and p < 0.05, else "n.s."), the paper's own difference in the "paper" column and their
difference in the "Δ" column, under the same n/c rules.
"""

from __future__ import annotations

from bench.evaluate.stats import METHOD, PairedGain
from bench.report.layout import Cell, Diff, GainRow, Layout, Line, MetricCol

DASH = "–"


def _fmt(v: float | None, fmt: str) -> str:
    return DASH if v is None else fmt.format(v)


def _signed(v: float, fmt: str) -> str:
    return ("+" if v >= 0 else "") + fmt.format(v)


def _n_text(ns: list[int]) -> str:
    if not ns:
        return "N=?"
    return f"N={min(ns)}" if min(ns) == max(ns) else f"N={min(ns)}-{max(ns)}"


def _below_min(col: MetricCol, ns: list[int]) -> bool:
    """Is this set-level value on too few images to compare or bold (an unknown N counts as too few)?"""
    return col.min_n is not None and (min(ns) if ns else 0) < col.min_n


def _ours(cell: Cell, col: MetricCol) -> str:
    m = cell.mean
    if m is None:
        return DASH
    ci = cell.ci95
    out = _fmt(m, col.fmt) + (f" ± {_fmt(ci, col.fmt)}" if ci is not None else "")
    return out + (f" ({_n_text(cell.n)})" if col.set_level else "")


def _delta(cell: Cell, col: MetricCol, reproduction: bool) -> str:
    if cell.mean is None or cell.paper is None:
        return DASH
    if not reproduction:
        return "n/c"
    if _below_min(col, cell.n):
        return f"N<{col.min_n}"
    d = cell.mean - cell.paper
    return _signed(d, col.fmt)


def gain_text(g: PairedGain | None, col: MetricCol) -> str:
    """Our paired difference: "+0.42 [+0.13, +0.71] better, p=0.004, W/T/L 9/0/3", or "... n.s., ..."."""
    if g is None:
        return DASH
    mean = _signed(g.mean, col.fmt)
    if g.level == "set":
        return f"{mean} ({_n_text(g.set_n)}, set-level: no interval)"
    if not g.has_interval:
        return f"{mean} ({g.n_images} image: no interval)"
    return (f"{mean} [{_signed(g.low, col.fmt)}, {_signed(g.high, col.fmt)}] {g.direction}, "  # type: ignore[arg-type]
            f"p={g.p_value:.2g}, W/T/L {g.wins}/{g.ties}/{g.losses}")


def _gain_delta(diff: Diff, col: MetricCol, reproduction: bool) -> str:
    if diff.ours is None or diff.paper is None:
        return DASH
    if not reproduction:
        return "n/c"
    if col.set_level and _below_min(col, diff.ours.set_n):
        return f"N<{col.min_n}"
    return _signed(diff.ours.mean - diff.paper, col.fmt)


def _gain_cells(layout: Layout, row: GainRow) -> list[str]:
    out = []
    for col in layout.metrics:
        diff = row.diffs.get(col.key, Diff())
        out.append(gain_text(diff.ours, col))
        if col.in_paper:
            out += [DASH if diff.paper is None else _signed(diff.paper, col.fmt),
                    _gain_delta(diff, col, layout.reproduction)]
    return out


def gain_label(row: GainRow) -> str:
    return f"↳ Δ vs {row.versus}"


def _cells(layout: Layout, line: Line, best: dict[str, float | None], bold: tuple[str, str]) -> list[str]:
    out = []
    for col in layout.metrics:
        cell = line.cells.get(col.key, Cell())
        ours = _ours(cell, col) if line.kind != "reference" else DASH
        if (line.kind == "trained" and cell.mean is not None and best.get(col.key) == cell.mean
                and not (col.min_n is not None and _below_min(col, cell.n))):
            ours = f"{bold[0]}{ours}{bold[1]}"
        out.append(ours)
        if col.in_paper:
            out += [_fmt(cell.paper, col.fmt), _delta(cell, col, layout.reproduction)]
    return out


def notes(layout: Layout) -> list[str]:
    """The footer, plus what the layout's content needs said: the gain rows' method, the FID's N rule."""
    out = list(layout.footer)
    lines = [ln for sec in layout.sections for ln in sec.lines]
    if any(ln.gains for ln in lines):
        out.append(METHOD)
        out.append("a difference whose interval holds 0 is \"n.s.\", never a gain; in a Δ row the paper column "
                   "holds the paper's own difference and Δ ours minus it (same n/c rules); bold marks the best of our "
                   "trained rows, never a Δ row.")
    for col in layout.metrics:
        shown = [ln.cells[col.key] for ln in lines if col.key in ln.cells and ln.cells[col.key].mean is not None]
        if col.min_n is not None and any(_below_min(col, c.n) for c in shown):
            out.append(f"{col.key.upper()}: every value shows its N (test images in the set). Below N = "
                       f"{col.min_n:,} an FID is dominated by its bias (bench.evaluate.metrics.FID_PAPER_MIN_N), so "
                       f"no difference to the paper's is printed (\"N<{col.min_n}\") and it is never bold; KID "
                       "(unbiased at any N) is its companion column.")
    return out


def _heading(layout: Layout) -> str:
    """"Table 1: ..." for the paper's tables; a user's experiment is headed by its own title."""
    return f"Table {layout.number}: {layout.title}" if isinstance(layout.number, int) else layout.title


def _headers(layout: Layout) -> list[str]:
    hs = ["Method"]
    for col in layout.metrics:
        hs.append(f"{col.header} (ours)")
        if col.in_paper:
            hs += [f"{col.header} (paper)", "Δ"]
    return hs


def _markdown_sections(layout: Layout, level: str) -> list[str]:
    lines = []
    hs = _headers(layout)
    for sec in layout.sections:
        best = {c.key: layout.best(sec, c.key) for c in layout.metrics}
        lines += [f"{level} {sec.title}", "", "| " + " | ".join(hs) + " |", "|" + "---|" * len(hs)]
        for ln in sec.lines:
            label = ln.label + (f" ({ln.note})" if ln.note else "")
            lines.append("| " + " | ".join([label, *_cells(layout, ln, best, ("**", "**"))]) + " |")
            lines += ["| " + " | ".join([gain_label(g), *_gain_cells(layout, g)]) + " |" for g in ln.gains]
        lines.append("")
    return lines


def to_markdown(layout: Layout) -> str:
    lines = [f"# {_heading(layout)}", "", f"> {layout.banner}", "", *_markdown_sections(layout, "##")]
    for extra in layout.appendices:
        lines += [f"## {extra.title}", "", *_markdown_sections(extra, "###"), *[f"- {f}" for f in notes(extra)], ""]
    lines += ["---", *[f"- {f}" for f in notes(layout)], ""]
    return "\n".join(lines)


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("*", r"$^{*}$"), ("±", r"$\pm$"), ("Δ", r"$\Delta$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"),
                 ("–", "--"), ("↳", r"$\hookrightarrow$"), ("<", r"$<$"),
                 ("γ", r"$\gamma$")):
        s = s.replace(a, b)
    return s


def _latex_table(layout: Layout, caption: str) -> list[str]:
    hs = _headers(layout)
    out = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{_tex_escape(caption)}}}",
           r"\begin{tabular}{l" + "r" * (len(hs) - 1) + "}", r"\toprule",
           " & ".join(_tex_escape(h) for h in hs) + r" \\"]
    for sec in layout.sections:
        best = {c.key: layout.best(sec, c.key) for c in layout.metrics}
        out += [r"\midrule", rf"\multicolumn{{{len(hs)}}}{{l}}{{\textit{{{_tex_escape(sec.title)}}}}} \\", r"\midrule"]
        for ln in sec.lines:
            label = ln.label + (f" ({ln.note})" if ln.note else "")
            cells = [_tex_escape(c) for c in _cells(layout, ln, best, ("\x00", "\x01"))]
            cells = [c.replace("\x00", r"\textbf{").replace("\x01", "}") for c in cells]
            out.append(" & ".join([_tex_escape(label), *cells]) + r" \\")
            for g in ln.gains:
                out.append(" & ".join(_tex_escape(c) for c in [gain_label(g), *_gain_cells(layout, g)]) + r" \\")
    return [*out, r"\bottomrule", r"\end{tabular}", r"\end{table}"]


def to_latex(layout: Layout) -> str:
    out = [f"% {_heading(layout)}", f"% {layout.banner}",
           *_latex_table(layout, f"{layout.title}. {layout.banner}")]
    for extra in layout.appendices:
        out += _latex_table(extra, f"{extra.title}. {' '.join(notes(extra))}")
    out += [f"% {f}" for f in notes(layout)]
    return "\n".join(out) + "\n"
