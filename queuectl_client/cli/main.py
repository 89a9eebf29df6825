"""`queuectl`: talk to the queuectld daemon.

Exit codes: 0 success, 1 the daemon refused (not found, invalid job,
conflict, ...), 2 usage error, 3 no daemon reachable.

`status` and `enqueue --command` in their plain forms run without click
(quick.py); every other command line goes through the click group (app.py).
Both end in the same errors here.
"""

from __future__ import annotations

import sys

from protocol.errors import ProtocolError
from queuectl_client.cli import quick
from queuectl_client.cli.context import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE
from queuectl_client.cli.terminal import echo
from queuectl_client.client import BadArgument, DaemonUnreachable


def main() -> None:
    try:
        if not quick.run(sys.argv[1:]):
            from queuectl_client.cli import app

            app.run()
    except ProtocolError as exc:
        echo(f"queuectl: {exc.code.value}: {exc.message}", err=True)
        sys.exit(EXIT_REFUSED)
    except DaemonUnreachable as exc:
        echo(f"queuectl: {exc}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    except BadArgument as exc:
        echo(f"queuectl: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except UnicodeEncodeError:
        # Arguments that are not UTF-8 arrive with surrogate escapes, which no
        # request can carry.
        echo("queuectl: an argument is not valid UTF-8", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as exc:
        echo(f"queuectl: {exc}", err=True)
        sys.exit(EXIT_REFUSED)


if __name__ == "__main__":
    main()
