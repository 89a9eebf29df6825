"""The job states are defined once; the frozen migrations must still agree with them."""

import re

from protocol.messages import JOB_STATES, LIVE_STATES, TERMINAL_STATES, WAITING_STATES
from queuectld.store.sql import LIVE, WAITING
from queuectld.store.sqlite.schema import MIGRATIONS


def test_the_state_families_cover_every_state_once():
    assert sorted(JOB_STATES) == sorted(LIVE_STATES + TERMINAL_STATES)
    assert set(WAITING_STATES) < set(LIVE_STATES)


def test_the_schemas_state_lists_are_the_defined_families():
    lists = set(re.findall(r"state IN (\([^)]*\))", "".join(MIGRATIONS)))
    # Indexes name waiting jobs (dispatch), live ones (unique keys) and finished
    # ones that retention prunes (completed and canceled: the DLQ is kept).
    assert lists <= {WAITING, LIVE, "('completed', 'canceled')"}
    assert WAITING in lists and LIVE in lists
