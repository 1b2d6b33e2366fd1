"""Markdown and LaTeX (booktabs) renderings of a :class:`~bench.report.layout.Layout`.

Each metric shows three columns: ours, the paper's, and the difference. The difference
is printed only for paper-profile runs; smoke and truncated runs print "n/c" (not
comparable) there and carry a banner saying they are not reproductions.
"""

from __future__ import annotations

from bench.report.layout import Cell, Layout, Line, MetricCol

DASH = "–"


def _fmt(v: float | None, fmt: str) -> str:
    return DASH if v is None else fmt.format(v)


def _ours(cell: Cell, col: MetricCol) -> str:
    m = cell.mean
    if m is None:
        return DASH
    ci = cell.ci95
    return _fmt(m, col.fmt) + (f" ± {_fmt(ci, col.fmt)}" if ci is not None else "")


def _delta(cell: Cell, col: MetricCol, reproduction: bool) -> str:
    if cell.mean is None or cell.paper is None:
        return DASH
    if not reproduction:
        return "n/c"
    d = cell.mean - cell.paper
    return ("+" if d >= 0 else "") + col.fmt.format(d)


def _cells(layout: Layout, line: Line, best: dict[str, float | None], bold: tuple[str, str]) -> list[str]:
    out = []
    for col in layout.metrics:
        cell = line.cells.get(col.key, Cell())
        ours = _ours(cell, col) if line.kind != "reference" else DASH
        if line.kind == "trained" and cell.mean is not None and best.get(col.key) == cell.mean:
            ours = f"{bold[0]}{ours}{bold[1]}"
        out.append(ours)
        if col.in_paper:
            out += [_fmt(cell.paper, col.fmt), _delta(cell, col, layout.reproduction)]
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
        lines.append("")
    return lines


def to_markdown(layout: Layout) -> str:
    lines = [f"# {_heading(layout)}", "", f"> {layout.banner}", "", *_markdown_sections(layout, "##")]
    for extra in layout.appendices:
        lines += [f"## {extra.title}", "", *_markdown_sections(extra, "###"), *[f"- {f}" for f in extra.footer], ""]
    lines += ["---", *[f"- {f}" for f in layout.footer], ""]
    return "\n".join(lines)


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("*", r"$^{*}$"), ("±", r"$\pm$"), ("Δ", r"$\Delta$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"),
                 ("–", "--")):
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
    return [*out, r"\bottomrule", r"\end{tabular}", r"\end{table}"]


def to_latex(layout: Layout) -> str:
    out = [f"% {_heading(layout)}", f"% {layout.banner}",
           *_latex_table(layout, f"{layout.title}. {layout.banner}")]
    for extra in layout.appendices:
        out += _latex_table(extra, f"{extra.title}. {' '.join(extra.footer)}")
    out += [f"% {f}" for f in layout.footer]
    return "\n".join(out) + "\n"
