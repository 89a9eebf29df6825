"""Integration with the service manager: socket activation and readiness notification."""
