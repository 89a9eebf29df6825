"""What the daemon tells about itself: counters, Prometheus metrics and structured logs."""
