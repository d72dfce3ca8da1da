"""``imagecache`` itself: its public names are imported on first use, its version is the installed one."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from collections.abc import Iterator

import pytest

import imagecache
from imagecache.cache import ImageCache
from imagecache.config import Settings


@pytest.fixture
def fresh_version() -> Iterator[None]:
    """The version looked up anew, and forgotten again after the test."""
    imagecache.installed_version.cache_clear()
    yield
    imagecache.installed_version.cache_clear()


def test_public_names_are_the_real_classes() -> None:
    assert imagecache.ImageCache is ImageCache
    assert imagecache.Settings is Settings
    from imagecache import ImageCache as FromImport

    assert FromImport is ImageCache


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from imagecache import *", namespace)
    assert {name for name in namespace if not name.startswith("__")} == {"ImageCache", "Settings"}


def test_dir_lists_the_public_names_before_they_are_imported() -> None:
    probe = "import imagecache, sys; print(' '.join(dir(imagecache))); print('imagecache.cache' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert {"ImageCache", "Settings", "__version__"} <= set(lines[0].split())
    assert lines[1] == "False"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'imagecache' has no attribute 'Nothing'"):
        imagecache.Nothing  # noqa: B018 - the attribute access is the test
    assert not hasattr(imagecache, "nothing_here")


@pytest.mark.usefixtures("fresh_version")
def test_the_version_is_the_installed_distributions() -> None:
    assert imagecache.__version__ == importlib.metadata.version("imagecache")
    from imagecache import __version__

    assert __version__ == imagecache.__version__


@pytest.mark.usefixtures("fresh_version")
def test_without_an_installed_distribution_the_version_says_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert imagecache.__version__ == imagecache.UNKNOWN_VERSION == "0+unknown"
