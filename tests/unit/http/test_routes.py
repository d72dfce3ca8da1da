"""The one route-template matcher: examples, then generated tables and paths against an oracle."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecache.http.routes import Matched, Routes, Template, WrongMethod, is_placeholder, split_path

# -- examples ------------------------------------------------------------------------

ROUTES: Routes[str] = Routes(
    [
        ("/", {"GET": "root"}),
        ("/v2/cache", {"GET": "state", "DELETE": "clear"}),
        ("/v2/cache/clean", {"POST": "clean"}),
        ("/v2/cache/{image_id}", {"PUT": "queue", "DELETE": "delete"}),
        ("/v2/images/{image_id}/file", {"GET": "download", "PUT": "upload"}),
    ]
)


def test_a_placeholder_captures_one_segment() -> None:
    assert ROUTES.match("PUT", "/v2/cache/abc") == Matched("queue", {"image_id": "abc"}, ("PUT", "DELETE"))
    assert ROUTES.match("GET", "/v2/images/a b%2F/file") == Matched(
        "download", {"image_id": "a b%2F"}, ("GET", "PUT")
    )


def test_the_first_fitting_template_decides() -> None:
    assert ROUTES.match("POST", "/v2/cache/clean") == Matched("clean", {}, ("POST",))
    # "clean" fits the literal row first: its methods answer, not {image_id}'s.
    assert ROUTES.match("PUT", "/v2/cache/clean") == WrongMethod(("POST",))


def test_a_wrong_method_lists_the_row_s_methods_in_its_order() -> None:
    assert ROUTES.match("POST", "/v2/cache") == WrongMethod(("GET", "DELETE"))
    assert ROUTES.match("get", "/v2/cache") == WrongMethod(("GET", "DELETE"))  # methods are case-sensitive


@pytest.mark.parametrize(
    "path",
    ["/v2/cache/", "/v2/cache//", "/v2//cache", "/v2/cache/a/", "/v2/images//file", "/v2/images/a/b/file", "//", "/x"],
)
def test_slashes_are_segments_never_normalised(path: str) -> None:
    assert ROUTES.match("GET", path) is None


def test_the_root_is_an_empty_path_or_a_slash() -> None:
    for path in ("", "/"):
        assert ROUTES.match("GET", path) == Matched("root", {}, ("GET",))
    assert split_path("") == split_path("/") == ("",)
    assert split_path("//") == ("", "")


def test_only_the_first_slash_is_dropped() -> None:
    assert split_path("v2/cache") == split_path("/v2/cache") == ("v2", "cache")
    assert split_path("/v2/cache/") == ("v2", "cache", "")


def test_placeholders() -> None:
    assert [is_placeholder(s) for s in ("{id}", "{}", "{", "}", "id", "{id", "id}", "x{id}")] == [
        True, True, False, False, False, False, False, False,
    ]
    assert Template.parse("/a/{}").fit(("a", "x")) == {"": "x"}
    assert Template.parse("/{id}/{id}").fit(("x", "y")) == {"id": "y"}  # the last one counts


def test_an_empty_table_routes_nothing() -> None:
    assert Routes[str]([]).match("GET", "/") is None


# -- the oracle: the rules as the docstring states them, with regular expressions ------


def _pattern(template: str) -> re.Pattern[str]:
    parts = template.removeprefix("/").split("/")
    regex = "/".join("([^/]+)" if len(p) >= 2 and p[0] == "{" and p[-1] == "}" else re.escape(p) for p in parts)
    return re.compile(r"\A" + regex + r"\Z", re.DOTALL)


def _names(template: str) -> list[str]:
    return [p[1:-1] for p in template.removeprefix("/").split("/") if len(p) >= 2 and p[0] == "{" and p[-1] == "}"]


Row = tuple[str, dict[str, str]]


def oracle(rows: list[Row], method: str, path: str) -> Matched[str] | WrongMethod | None:
    for template, methods in rows:
        found = _pattern(template).match(path.removeprefix("/"))
        if found is None:
            continue
        if method not in methods:
            return WrongMethod(tuple(methods))
        return Matched(methods[method], dict(zip(_names(template), found.groups(), strict=True)), tuple(methods))
    return None


# -- generated tables and paths --------------------------------------------------------

LITERALS = st.sampled_from(["", "v1", "v2", "cache", "images", "file", "clean", "{", "}", "{x", ".", "..", "%2F"])
PLACEHOLDERS = st.sampled_from(["{id}", "{image_id}", "{name}", "{}"])
SEGMENT = st.one_of(LITERALS, PLACEHOLDERS, st.text(alphabet=st.characters(codec="latin-1", exclude_characters="/")))
TEMPLATES = st.lists(SEGMENT, max_size=5).map(lambda parts: "/" + "/".join(parts))
METHODS = st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"])
TABLES = st.lists(
    st.tuples(TEMPLATES, st.dictionaries(METHODS, st.sampled_from(["a", "b", "c"]), min_size=1)), max_size=6
)
VALUE = st.text(alphabet=st.characters(codec="latin-1", exclude_characters="/"), min_size=1, max_size=12)


def _paths_near(rows: list[Row]) -> st.SearchStrategy[str]:
    """Paths built from the table's own templates (so some fit), altered or not, and random ones."""
    built = st.sampled_from([t for t, _ in rows] or ["/"]).flatmap(
        lambda template: st.lists(st.one_of(VALUE, st.just("")), min_size=8, max_size=8).map(
            lambda values: _fill(template, values)
        )
    )
    altered = st.tuples(built, st.sampled_from(["", "/", "//", "/x", "x"])).map("".join)
    return st.one_of(built, altered, st.text(alphabet=st.characters(codec="latin-1"), max_size=30))


def _fill(template: str, values: list[str]) -> str:
    parts = template.split("/")
    it = iter(values)
    return "/".join(next(it, "v") if is_placeholder(p) else p for p in parts)


def test_the_oracle_agrees_on_a_shadowed_literal() -> None:
    rows: list[Row] = [("/a/{id}", {"GET": "a"}), ("/a/b", {"PUT": "b"})]
    for path in ("/a/b", "/a/b/", "/a/", "a/b", ""):
        for method in ("GET", "PUT"):
            assert Routes(rows).match(method, path) == oracle(rows, method, path), (method, path)
    assert oracle(rows, "PUT", "/a/b") == WrongMethod(("GET",))


@given(data=st.data(), rows=TABLES, method=METHODS)
def test_generated_tables_match_as_the_oracle_says(data: st.DataObject, rows: list[Row], method: str) -> None:
    routes = Routes(rows)
    for _ in range(5):
        path = data.draw(_paths_near(rows))
        assert routes.match(method, path) == oracle(rows, method, path), path


@given(
    template=TEMPLATES,
    values=st.lists(VALUE, min_size=5, max_size=5),
    methods=st.dictionaries(METHODS, st.sampled_from(["a", "b"]), min_size=1),
)
def test_a_path_built_from_a_template_matches_it_with_those_values(
    template: str, values: list[str], methods: dict[str, str]
) -> None:
    names = [s[1:-1] for s in Template.parse(template).segments if is_placeholder(s)]
    path = _fill(template, values)
    method = next(iter(methods))
    found = Routes([(template, methods)]).match(method, path)
    expected = dict(zip(names, values, strict=False))  # a repeated name keeps its last value
    assert found == Matched(methods[method], expected, tuple(methods))


@given(template=TEMPLATES, values=st.lists(VALUE, min_size=5, max_size=5), extra=st.sampled_from(["/", "//", "/x"]))
def test_a_trailing_slash_or_segment_never_fits_the_same_template(template: str, values: list[str], extra: str) -> None:
    path = _fill(template, values)
    assert Routes([(template, {"GET": "a"})]).match("GET", path + extra) is None


@given(template=TEMPLATES, values=st.lists(VALUE, min_size=5, max_size=5), cut=st.integers(0, 4))
def test_a_placeholder_never_captures_an_empty_segment(template: str, values: list[str], cut: int) -> None:
    values[cut] = ""
    names = [s for s in Template.parse(template).segments if is_placeholder(s)]
    found = Routes([(template, {"GET": "a"})]).match("GET", _fill(template, values))
    if cut < len(names):
        assert found is None
    else:
        assert isinstance(found, Matched)


@given(rows=TABLES, method=st.text(max_size=8), path=st.text(max_size=60))
def test_never_raises_on_any_text(rows: list[Row], method: str, path: str) -> None:
    found = Routes(rows).match(method, path)
    assert found is None or isinstance(found, Matched | WrongMethod)
    if isinstance(found, Matched):
        assert all(value and "/" not in value for value in found.params.values())


def test_rows_give_back_each_template_and_its_methods_in_order() -> None:
    rows = Routes([("/", {"GET": 1}), ("/v2/cache/{id}", {"PUT": 2, "DELETE": 3}), ("/a//b/", {"POST": 4})])
    assert rows.rows() == (("/", ("GET",)), ("/v2/cache/{id}", ("PUT", "DELETE")), ("/a//b/", ("POST",)))
