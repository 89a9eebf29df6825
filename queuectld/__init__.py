"""queuectld: the supervisor daemon that owns the job store and the worker fleet."""

__version__ = "0.1.0"
