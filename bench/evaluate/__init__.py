"""Scoring restored images: metrics with stated conventions, per-image scoring, paired comparison.

Kept import-light: ``bench.evaluate.metrics`` pulls in pyiqa and torch-fidelity only when used.
"""
