"""open_published: one open and one fstat decide a hit, and what it sends."""

from __future__ import annotations

import os
from pathlib import Path

from imagecache.cache.layout import CacheLayout
from imagecache.cache.opened import open_published

IMAGE = "12345678-1234-1234-1234-123456789abc"


def test_absent_or_not_a_file_is_not_cached(tmp_path: Path) -> None:
    layout = CacheLayout(str(tmp_path / "cache"))
    layout.ensure()
    assert open_published(layout, IMAGE) is None
    os.mkdir(layout.path(IMAGE))
    assert open_published(layout, IMAGE) is None


def test_the_facts_are_the_descriptors_and_outlive_the_path(tmp_path: Path) -> None:
    layout = CacheLayout(str(tmp_path / "cache"))
    layout.ensure()
    Path(layout.path(IMAGE)).write_bytes(b"x" * 1234)
    opened = open_published(layout, IMAGE)
    assert opened is not None
    try:
        facts = os.stat(layout.path(IMAGE))
        assert (opened.size, opened.mtime) == (facts.st_size, facts.st_mtime)
        os.unlink(layout.path(IMAGE))  # evicted meanwhile: the open file is still whole
        assert os.pread(opened.file.fileno(), opened.size, 0) == b"x" * 1234
    finally:
        opened.close()
    assert opened.file.closed
