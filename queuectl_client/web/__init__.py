"""`queuectl web`: a dashboard in the browser, a client of the daemon's socket like
the CLI. Installed with the `web` extra (aiohttp, Jinja2)."""
