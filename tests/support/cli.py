"""Calling bench's CLI entry point inside the test process (its start-up paid once, output captured)."""

from __future__ import annotations

import sys

import pytest

from bench import cli


def call_main(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``bench.cli.main()`` with ``sys.argv`` as already set: (exit code, stdout + stderr)."""
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            columns: str = "200") -> tuple[int, str]:
    """``bench ARGS`` at a terminal ``columns`` wide: (exit code, stdout + stderr)."""
    monkeypatch.setattr(sys, "argv", ["bench", *args])
    monkeypatch.setenv("COLUMNS", columns)
    return call_main(capsys)
