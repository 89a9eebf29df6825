"""What runs when: dispatch, the attempt state machine, recovery, schedules, hooks."""
