"""Load generators: small programs the scenarios run as separate processes."""
