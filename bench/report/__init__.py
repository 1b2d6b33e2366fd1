"""Rendering results beside the paper's numbers: Markdown and LaTeX tables, figures."""
