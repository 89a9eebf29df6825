"""Helpers for tests that need a program from outside Python (systemd's, tmux, shells)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, package: str) -> str:
    """The path of `name`; skip without it locally, fail without it in CI.

    CI installs these packages (.ci/run); a missing one
    there is a broken CI set-up, not a reason to pass quietly.
    """
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package {package})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
