"""Progress bars for ``imagecache prefetch`` on a terminal: one per image, in bytes.

rich is imported only when the bars are shown.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from imagecache.jobs import Prefetcher


def fetch_queue(prefetcher: Prefetcher, *, show_progress: bool) -> tuple[list[str], list[str]]:
    """Fetch the queue: (fetched ids, failed ids); a progress bar per image when stdout is a terminal."""
    from rich.console import Console

    console = Console(file=sys.stdout)
    fetched: list[str] = []
    failed: list[str] = []
    with ProgressBars(console, enabled=show_progress and console.is_terminal) as bars:
        for image_id, ok in prefetcher.fetch_queued(progress=bars.update):
            (fetched if ok else failed).append(image_id)
            bars.finish(image_id, ok)
    return fetched, failed


class ProgressBars:
    """One rich progress bar per image, in bytes; does nothing when disabled (not a terminal)."""

    def __init__(self, console: Console, *, enabled: bool) -> None:
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        if enabled:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=24), DownloadColumn(binary_units=True),
                TransferSpeedColumn(), TextColumn("{task.fields[state]}"), console=console,
            )

    def __enter__(self) -> ProgressBars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, image_id: str, done: int, total: int | None) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(image_id)
        if task is None:
            task = self._tasks[image_id] = self._progress.add_task(image_id, total=total, state="")
        self._progress.update(task, completed=done)

    def finish(self, image_id: str, ok: bool) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(image_id)
        if task is None:  # cached already: no bytes were read
            task = self._tasks[image_id] = self._progress.add_task(image_id, total=0, state="")
        self._progress.update(task, state="[green]cached[/green]" if ok else "[red]failed[/red]")
        self._progress.stop_task(task)
