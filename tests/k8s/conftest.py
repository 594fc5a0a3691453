"""Fixtures for the k8s tests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from s2s.cli import main


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """``s2s ARGS`` through the CLI's own entry point, in this process (the command's exit code
    and output as a user sees them; a new interpreter per call cost seconds each)."""

    def s2s(*args: str) -> Ran:
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level  # the CLI sets up logging for itself
        capsys.readouterr()
        try:
            code = main(list(args))
        finally:
            root.handlers[:], root.level = handlers, level
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return s2s
