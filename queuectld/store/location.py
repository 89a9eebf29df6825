"""Store locations: which backend a location names, and how to show one safely.

Kept apart from the backends so that the daemon can name its store in logs,
errors and `status` without importing a database driver.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def redact(location: str) -> str:
    """The location with its password replaced, for messages and logs; a path as it is."""
    if not is_postgres(location):
        return location
    parts = urlsplit(location)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = urlencode(
        [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query, True)]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
