"""Processes: the supervisor of worker processes, the worker itself, and finding leftovers."""
