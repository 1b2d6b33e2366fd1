"""User-facing errors: one sentence saying what is wrong, plus how to fix it.

The CLI prints these without a traceback (``--debug`` shows it); library callers can
catch :class:`BenchError` and read ``.fix`` and ``.doc`` programmatically.
"""

from __future__ import annotations


class BenchError(Exception):
    """An error a user can act on.

    ``fix`` says what to do; ``doc`` names the REPRODUCE.md section that explains it.
    """

    exit_code = 2

    def __init__(self, message: str, fix: str | None = None, doc: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.doc = doc

    def __str__(self) -> str:
        parts = [self.message]
        if self.fix:
            parts.append(f"Fix: {self.fix}")
        if self.doc:
            parts.append(f"See REPRODUCE.md, section '{self.doc}'.")
        return " ".join(parts)


class UnknownNameError(BenchError, KeyError):
    """A registry lookup missed."""

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return BenchError.__str__(self)


class MissingFileError(BenchError, FileNotFoundError):
    """A weight file or data set is not where it should be."""

    def __str__(self) -> str:
        return BenchError.__str__(self)


class DataError(BenchError, ValueError):
    """Input data is malformed: unpaired, wrong size, undecodable, wrong channels."""

    def __str__(self) -> str:
        return BenchError.__str__(self)


class TrainingDiverged(BenchError, RuntimeError):
    """A loss became NaN or infinite; the run stops before writing bad weights."""

    def __str__(self) -> str:
        return BenchError.__str__(self)


class JobsFailed(BenchError, RuntimeError):
    """Some jobs of a run failed (each has an error.json); the others ran. Exit status 1."""

    exit_code = 1

    def __str__(self) -> str:
        return BenchError.__str__(self)


class DiskFull(BenchError, OSError):
    """A write failed for lack of space (ENOSPC or a quota): the run stops, finished jobs stay, the job resumes."""

    def __str__(self) -> str:
        return BenchError.__str__(self)
