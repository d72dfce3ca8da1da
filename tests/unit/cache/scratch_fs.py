"""Real scratch filesystems for failure tests (tmpfs for "disk full", ramfs for "no xattrs").

Mounting needs root; without it the tests that use these skip and say why.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

import pytest


def can_mount() -> bool:
    return os.geteuid() == 0


@contextlib.contextmanager
def mounted(fstype: str, path: str, options: str | None = None) -> Iterator[str]:
    if not can_mount():
        pytest.skip(f"mounting a {fstype} needs root")
    os.makedirs(path, exist_ok=True)
    cmd = ["mount", "-t", fstype]
    if options:
        cmd += ["-o", options]
    done = subprocess.run([*cmd, fstype, path], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {fstype} here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)
