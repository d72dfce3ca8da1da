"""innermost(): the message from the bottom of an exception chain, however it is chained."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from imagecache.http.causes import chain, innermost


def test_a_plain_exception_is_its_own_message() -> None:
    assert innermost(ValueError("bad")) == "bad"
    assert innermost(ValueError()) == "ValueError"


def test_cause_context_reason_and_arguments_are_followed() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    assert innermost(ProtocolError("Connection aborted.", refused)) == str(refused)  # an argument
    try:
        try:
            raise TimeoutError("timed out")
        except OSError as exc:
            raise RuntimeError("wrapped") from exc  # __cause__
    except RuntimeError as outer:
        assert innermost(outer) == "timed out"
    try:
        try:
            raise KeyError("k")
        except KeyError:
            raise RuntimeError("during") from None  # suppressed: no cause, the context stays
    except RuntimeError as outer:
        assert innermost(outer) == "'k'"


def test_urllib3_s_max_retry_error_keeps_its_cause_as_reason() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    new = NewConnectionError(None, "Failed to establish a new connection")  # type: ignore[arg-type]
    new.__cause__ = refused
    outer = MaxRetryError(None, "/x", new)  # type: ignore[arg-type]
    assert outer.__cause__ is None and outer.__context__ is None
    assert innermost(outer) == str(refused)
    assert list(chain(outer)) == [outer, new, refused]


def test_a_loop_stops_at_the_first_exception_seen_twice() -> None:
    first, second = ValueError("first"), ValueError("second")
    first.__cause__, second.__cause__ = second, first
    assert innermost(first) == "second"
    assert list(chain(first)) == [first, second]
    selfish = ValueError("me")
    selfish.__context__ = selfish
    assert innermost(selfish) == "me"


@given(messages=st.lists(st.text(min_size=1), min_size=1, max_size=8), links=st.data())
def test_any_chain_ends_at_its_last_link(messages: list[str], links: st.DataObject) -> None:
    errors = [OSError(message) for message in messages]
    for outer, inner in itertools.pairwise(errors):
        how = links.draw(st.sampled_from(["cause", "context", "reason", "arg"]))
        if how == "cause":
            outer.__cause__ = inner
        elif how == "context":
            outer.__context__ = inner
        elif how == "reason":
            outer.reason = inner  # type: ignore[attr-defined]
        else:
            outer.args = (*outer.args, inner)
    assert list(chain(errors[0])) == errors
    assert innermost(errors[0]) == str(errors[-1])
