"""SQL fragments built from the protocol's state definitions, shared by SQL backends.

The states are defined once in `protocol.messages`; a backend never spells a
state list out again. Migrations are the exception: they are history, frozen as
they were applied (the schema test checks their lists still agree).
"""

from __future__ import annotations

from protocol.messages import LIVE_STATES, TERMINAL_STATES, WAITING_STATES


def state_list(states: tuple[str, ...]) -> str:
    """`('a', 'b')`: the states as an SQL list, for `state IN ...`."""
    return "(" + ", ".join(f"'{state}'" for state in states) + ")"


WAITING = state_list(WAITING_STATES)
LIVE = state_list(LIVE_STATES)
TERMINAL = state_list(TERMINAL_STATES)
# A claimable job: waiting for its time (or a retry) and for no dependency.
CLAIMABLE = f"state IN {WAITING} AND blocked = 0"
