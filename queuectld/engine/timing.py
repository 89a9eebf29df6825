"""How often a daemon renews its lease, and how long a silent daemon keeps its runs.

Its own module so that the command line can check the figures without importing
the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

HEARTBEAT_SECONDS = 5.0
# A daemon silent for this long is presumed dead and its runs are rescued.
LEASE_SECONDS = 30.0
# A lease must survive a few missed beats, or a slow store thread alone would make
# the other daemons rescue the runs of a daemon that is alive.
BEATS_PER_LEASE = 3
# A daemon that has not renewed its lease for this share of it fences itself: it
# starts nothing and kills its running jobs, so that they are dead before another
# daemon may presume it dead and start them again (the rest is the margin for a
# kill to take effect and for clocks that disagree a little).
FENCE_SHARE = 2 / 3


@dataclass(frozen=True)
class LeaseTiming:
    heartbeat: float = HEARTBEAT_SECONDS
    lease: float = LEASE_SECONDS

    @property
    def fence_after(self) -> float:
        """Seconds without a renewed lease after which a daemon fences itself."""
        return self.lease * FENCE_SHARE

    @property
    def fence_grace(self) -> float:
        """The longest a fenced job gets between SIGTERM and SIGKILL: half of what
        is left of the lease, whatever `kill-grace` says."""
        return (self.lease - self.fence_after) / 2

    @classmethod
    def of(cls, heartbeat: float | None, lease: float | None) -> LeaseTiming:
        """The timing from --heartbeat-seconds and --lease-seconds; ValueError if they
        cannot work together."""
        timing = cls(
            HEARTBEAT_SECONDS if heartbeat is None else heartbeat,
            LEASE_SECONDS if lease is None else lease,
        )
        if heartbeat is None and lease is not None:
            # Only the lease given: beat often enough for it.
            timing = cls(min(HEARTBEAT_SECONDS, timing.lease / BEATS_PER_LEASE), timing.lease)
        if not 0.1 <= timing.heartbeat <= 3600:
            raise ValueError("--heartbeat-seconds must be 0.1 to 3600")
        if timing.lease < BEATS_PER_LEASE * timing.heartbeat:
            raise ValueError(
                f"--lease-seconds ({timing.lease:g}) must be at least {BEATS_PER_LEASE} "
                f"heartbeats ({BEATS_PER_LEASE * timing.heartbeat:g} s)"
            )
        return timing
