"""The frame of ``imagecache top`` (pure): its bounds whatever the data, and what it says."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from imagecache.cli.top_view import render
from imagecache.client.activity import Activity, Counters, FillView, NodeView

IMAGE = "6a1f9e3c-5b2d-4c8e-9f0a-1b2c3d4e5f60"
counts = st.integers(-(1 << 70), 1 << 70)
names = st.none() | st.text(max_size=40)
splits = st.dictionaries(st.text(max_size=12), counts, max_size=5)
fills = st.builds(FillView, st.text(max_size=40), names, counts, st.none() | counts, st.none() | counts,
                  st.sampled_from(["origin", "peer"]) | st.text(max_size=10))
counters = st.builds(Counters, counts, counts, counts, counts, counts, counts, splits, splits, splits, counts,
                     splits)
times = st.floats(allow_nan=True, allow_infinity=True) | st.floats(-1e12, 1e12)
nodes = st.builds(NodeView, st.text(max_size=60), st.text(max_size=30),
                  st.sampled_from(["live", "stale", "never"]) | st.text(max_size=8), st.none() | times)
activities = st.builds(Activity, times, st.lists(fills, max_size=30).map(tuple), counters, st.none() | counts,
                       st.none() | counts, st.lists(st.text(max_size=40), max_size=10).map(tuple),
                       st.lists(st.text(max_size=40), max_size=10).map(tuple), st.booleans(),
                       st.none() | st.lists(nodes, max_size=20).map(tuple))


def one_cell(line: str) -> bool:
    return all(char.isprintable() and not unicodedata.combining(char)
               and unicodedata.east_asian_width(char) not in "WF" for char in line)


@given(activities, st.none() | activities, st.integers(-5, 300), st.integers(-5, 80), st.text(max_size=30))
def test_a_frame_never_exceeds_the_terminal_whatever_the_data(now, before, width, height, title) -> None:
    lines = render(now, before, width, height, title)
    assert len(lines) <= max(height, 0)
    assert all(len(line) <= width for line in lines)
    assert all(one_cell(line) for line in lines)


@given(st.integers(1, 300), st.integers(1, 80))
def test_an_idle_node_renders_in_any_size(width, height) -> None:
    lines = render(Activity(0.0), None, width, height)
    assert 1 <= len(lines) <= height


def snapshot(when: float, done: int, hits: int, served: int, **extra) -> Activity:
    return Activity(when, (FillView(IMAGE, "ubuntu", done, 10 << 20, 3, "peer"),),
                    Counters(hits=hits, misses=1, served_bytes={"cache": served}), 5 << 30, 10 << 30, **extra)


def test_rates_and_the_interval_come_from_two_snapshots() -> None:
    before = snapshot(100.0, 1 << 20, 1, 0)
    now = snapshot(102.0, 5 << 20, 4, 4 << 20, queued_images=(IMAGE,))
    text = "\n".join(render(now, before, 120, 40))
    assert "last 2.0 s: hit ratio 100.0% (3 hits, 0 misses" in text
    assert "served 2.0 MiB/s (cache 2.0 MiB/s)" in text
    assert "cache 5.0 GiB of 10.0 GiB (50%); 1 queued, 0 pinned" in text
    [row] = [line for line in text.splitlines() if line.startswith(IMAGE[:8])]
    assert "ubuntu" in row and "5.0 MiB / 10.0 MiB 50%" in row and "2.0 MiB/s" in row and row.endswith(" 3 peer")


def test_one_snapshot_shows_totals_since_start_and_no_fill_rate() -> None:
    text = "\n".join(render(snapshot(100.0, 1 << 20, 1, 7), None, 120, 40))
    assert "since start: hit ratio 50.0% (1 hit, 1 miss" in text
    [row] = [line for line in text.splitlines() if line.startswith(IMAGE[:8])]
    assert " - " in row


def test_a_counter_that_went_down_counts_as_zero() -> None:
    text = "\n".join(render(snapshot(102.0, 0, 0, 0), snapshot(100.0, 5, 9, 9), 120, 40))
    assert "hit ratio - (0 hits, 0 misses" in text


def test_fills_that_do_not_fit_are_counted() -> None:
    many = Activity(1.0, tuple(FillView(f"{n:08d}-x", None, n) for n in range(50)))
    lines = render(many, None, 100, 20)
    assert len(lines) == 20
    assert lines[-1].startswith("... ") and lines[-1].endswith(" more")


def test_control_characters_in_a_name_never_reach_the_terminal() -> None:
    sneaky = Activity(1.0, (FillView(IMAGE, "\x1b[2Jgone\r\n", 1),))
    assert not any("\x1b" in line or "\r" in line for line in render(sneaky, None, 120, 40))


def test_evictions_and_origin_reasons_are_counted_over_the_interval() -> None:
    before = Activity(100.0, counters=Counters(evictions=2, origin_requests={"miss": 3}))
    now = Activity(101.0, counters=Counters(evictions=5, origin_requests={"miss": 4, "range-uncached": 2},
                                            not_stored={"too-large": 1}, fills={"failed": 1, "completed": 0}))
    text = "\n".join(render(now, before, 120, 40))
    assert "not stored: too-large 1; evicted 3" in text
    assert "to the origin: miss 1, range-uncached 2; fills ended: failed 1" in text


def test_pinned_images_over_the_limit_are_the_second_line() -> None:
    lines = render(Activity(1.0, pinned_over_limit=True), None, 120, 40)
    assert lines[1].startswith("WARNING: pinned images alone exceed the cache's limit")
    assert not any("WARNING" in line for line in render(Activity(1.0), None, 120, 40))


def test_the_nodes_show_their_state_site_and_last_heartbeat() -> None:
    fleet = (NodeView("http://edge-2:9292", "west", "stale", 40.0),
             NodeView("http://edge-1:9292", "east", "live", 97.5),
             NodeView("http://tool", "default", "never", None))
    lines = render(Activity(100.0, nodes=fleet), None, 120, 40)
    start = lines.index("nodes: 3 (1 live, 1 stale, 1 never)")
    assert lines[start + 1].split() == ["live", "east", "heard", "2", "s", "ago", "http://edge-1:9292"]
    assert lines[start + 2].split() == ["stale", "west", "heard", "60", "s", "ago", "http://edge-2:9292"]
    assert lines[start + 3].split() == ["never", "default", "heard", "never", "http://tool"]
    assert not any(line.startswith("nodes:") for line in render(Activity(100.0), None, 120, 40))
