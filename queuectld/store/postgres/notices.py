"""Telling the other daemons that jobs became due (or that a cancel is asked of
one of them): one NOTIFY per transaction and channel.

A call that can make jobs claimable now (an insert, a release or rescue of
claims, a retry, an edit, a queue resumed or given room) marks the transaction,
and the commit sends a single `NOTIFY` just before it. Not a trigger per row:
every NOTIFY takes a lock that serialises commits, which is why River and Oban
both moved notifying out of row triggers into the application.
"""

from __future__ import annotations

from queuectld.store.base import Enqueued, JobRow, RunningAttempt

CHANNEL = "queuectl_due"
# A cancel of a running job was asked for through another daemon than its owner.
CANCEL_CHANNEL = "queuectl_cancel"
# What may run changed (settings, queues, a drain): every daemon re-reads what it
# keeps in memory. The payload is the id of the daemon that made the change.
RULES_CHANNEL = "queuectl_rules"


class DueNotices:
    """Mixed in before the statement mixins: marks what may have made jobs due."""

    # Set during a transaction, sent and cleared at its commit.
    jobs_became_due = False
    cancel_requested = False
    rules_changed_by: str | None = None

    def announce_rules(self, sender: str) -> None:
        self.rules_changed_by = sender

    def insert_jobs(self, *args, **kwargs) -> Enqueued:
        result = super().insert_jobs(*args, **kwargs)
        self.jobs_became_due = True
        return result

    def request_cancel(self, *args, **kwargs) -> str | None:
        owner = super().request_cancel(*args, **kwargs)
        if owner is not None:
            self.cancel_requested = True
        return owner

    def release_claims(self, *args, **kwargs) -> None:
        super().release_claims(*args, **kwargs)
        self.jobs_became_due = True

    def rescue_expired_runs(self, *args, **kwargs) -> list[RunningAttempt]:
        rescued = super().rescue_expired_runs(*args, **kwargs)
        if rescued:
            self.jobs_became_due = True
        return rescued

    def retry_dead_jobs(self, *args, **kwargs) -> list[str]:
        retried = super().retry_dead_jobs(*args, **kwargs)
        if retried:
            self.jobs_became_due = True
        return retried

    def retry_job(self, *args, **kwargs) -> JobRow:
        job = super().retry_job(*args, **kwargs)
        self.jobs_became_due = True
        return job

    def edit_job(self, *args, **kwargs) -> JobRow:
        job = super().edit_job(*args, **kwargs)
        self.jobs_became_due = True
        return job

    def set_queue(self, *args, **kwargs) -> dict:
        settings = super().set_queue(*args, **kwargs)
        self.jobs_became_due = True
        return settings
