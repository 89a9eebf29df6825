"""What every scenario is handed: the sizes, a scratch folder, and shared measurements."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.profiles import Profile


@dataclass
class Context:
    profile: Profile
    scratch: Path
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    verbose: bool = True
    _memo: dict[str, Any] = field(default_factory=dict)

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"  .. {message}", file=sys.stderr, flush=True)

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """Measure something once per suite run (the spawn floor, our drain rate)
        so that ratios in later scenarios compare figures of the same run."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def folder(self, name: str) -> Path:
        path = self.scratch / name
        path.mkdir(parents=True, exist_ok=True)
        return path
