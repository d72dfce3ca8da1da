"""run_forked: a start-up check in a child process, its verdict back in the parent."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from imagecache.serving.forked_check import run_forked


class Refused(ValueError):
    pass


class Broken(RuntimeError):
    pass


def test_a_check_that_passes_returns_and_its_effects_on_disk_stay(tmp_path: Path) -> None:
    run_forked(lambda: (tmp_path / "made").write_text("by the child"), (Refused, Broken))
    assert (tmp_path / "made").read_text() == "by the child"


def test_what_the_child_builds_in_memory_stays_there() -> None:
    built: list[int] = []
    run_forked(lambda: built.append(1), (Refused, Broken))
    assert built == []


@pytest.mark.parametrize(("kind", "expected"), [(Refused, Refused), (Broken, Broken)])
def test_a_named_exception_comes_back_with_its_message(kind: type[Exception], expected: type[Exception]) -> None:
    def check() -> None:
        raise kind("image_cache_dir is not writable: ünïcode")

    with pytest.raises(expected, match=r"^image_cache_dir is not writable: ünïcode$"):
        run_forked(check, (Refused, Broken))


def test_anything_else_comes_back_as_the_last_kind_with_its_type() -> None:
    def check() -> None:
        raise KeyError("lost")

    with pytest.raises(Broken, match=r"^KeyError: 'lost'$"):
        run_forked(check, (Refused, Broken))


def test_a_child_that_dies_is_a_failure_not_a_hang() -> None:
    with pytest.raises(Broken, match="ended with status -9"):
        run_forked(lambda: os.kill(os.getpid(), signal.SIGKILL), (Refused, Broken))
