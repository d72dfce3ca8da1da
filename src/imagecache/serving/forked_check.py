"""Run a start-up check in a forked child, so what it builds never stays in the master.

The master rehearses the workers' whole application and reconciles the
index before it forks the workers (one clear line instead of a traceback
per worker).  Done in the master itself, every module and object that
touched stays resident there for the node's life, although the master
serves nothing: about 20 MiB of a 2-worker node's footprint.  In a child
that exits, the kernel takes it all back.  The child's verdict (one of the
exception types the caller names, with its message) comes back over a pipe.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

__all__ = ["run_forked"]

#: Exit status of a child whose check raised nothing the caller named.
UNEXPECTED = 100


def run_forked(check: Callable[[], None], raises: Sequence[type[Exception]]) -> None:
    """Run ``check`` in a child process; re-raise here the first of ``raises`` it raised, same message.

    Anything else the child raises comes back as the last of ``raises``.
    Call it with no other thread running (a fork copies only the caller's).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        status, message = 0, ""
        try:
            check()
        except BaseException as exc:  # noqa: BLE001 - everything ends here, in one line for the parent
            known = [index for index, kind in enumerate(raises) if isinstance(exc, kind)]
            status = known[0] + 1 if known else UNEXPECTED
            message = str(exc) if known else f"{type(exc).__name__}: {exc}"
        finally:
            os.write(write_end, message.encode("utf-8", "replace"))
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as verdict:
        message = verdict.read().decode("utf-8", "replace")
    _, wait_status = os.waitpid(pid, 0)
    status = os.waitstatus_to_exitcode(wait_status)
    if status == 0:
        return
    if 1 <= status <= len(raises):
        raise raises[status - 1](message)
    raise raises[-1](message or f"the start-up check ended with status {status}")
