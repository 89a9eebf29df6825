"""The `queuectl` command line: one module per command group."""
