"""The mmap threshold is fixed where the C library is glibc (this machine's), and never fails elsewhere."""

from __future__ import annotations

import platform

from imagecache.serving import malloc_tuning


def test_the_threshold_is_fixed_on_glibc() -> None:
    fixed = malloc_tuning.fix_mmap_threshold()
    if platform.libc_ver()[0] == "glibc":
        assert fixed
    assert isinstance(fixed, bool)
