"""`imagecache manage ...`: output, exit statuses and options, against a stub client (CliRunner, no sockets).

The stub comes in through the click context's ``obj`` (a ManageSession with
a client factory), as any caller of ``main`` may pass it.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from imagecache.cli import main
from imagecache.cli.fleet import rows
from imagecache.cli.manage import local_time
from imagecache.cli.manage_session import ManageSession, connect
from imagecache.client import (
    BadRequest,
    ClientError,
    ConfigurationError,
    Forbidden,
    HTTPStatusError,
    InvalidResponse,
    NotFound,
    ServerError,
    Unauthorized,
    Unreachable,
)

NOW = 1_700_000_000.0
FORBIDDEN = "You are not permitted to manage the image cache."


@pytest.fixture(autouse=True)
def no_client_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's OS_* and GLANCE_CLIENT_* variables must not reach the commands."""
    for name in [n for n in os.environ if n.startswith(("OS_", "GLANCE_CLIENT_"))]:
        monkeypatch.delenv(name)


@dataclass
class StubClient:
    """CacheClient's methods over lists; ``errors`` maps an image id or a method name to what it raises."""

    cached: list[dict[str, Any]] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    fleet: list[dict[str, Any]] = field(default_factory=list)
    pinned: dict[str, str] = field(default_factory=dict)
    pins_over_limit: bool = False
    errors: dict[str, ClientError] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    closed: bool = False

    def _call(self, method: str, *args: str) -> None:
        self.calls.append((method, *args))
        error = self.errors.get(args[0] if args else method) or self.errors.get(method)
        if error is not None:
            raise error

    def get_cached_images(self) -> list[dict[str, Any]]:
        self._call("get_cached_images")
        return list(self.cached)

    def get_queued_images(self) -> list[str]:
        self._call("get_queued_images")
        return list(self.queued)

    def get_fleet(self) -> list[dict[str, Any]]:
        self._call("get_fleet")
        return list(self.fleet)

    def queue_image_for_caching(self, image_id: str) -> bool:
        self._call("queue_image_for_caching", image_id)
        self.queued.append(image_id)
        return True

    def delete_cached_image(self, image_id: str) -> bool:
        self._call("delete_cached_image", image_id)
        self.cached = [entry for entry in self.cached if entry["image_id"] != image_id]
        return True

    def delete_queued_image(self, image_id: str) -> bool:
        self._call("delete_queued_image", image_id)
        self.queued = [queued for queued in self.queued if queued != image_id]
        return True

    def delete_all_cached_images(self) -> int:
        self._call("delete_all_cached_images")
        count, self.cached = len(self.cached), []
        return count

    def delete_all_queued_images(self) -> int:
        self._call("delete_all_queued_images")
        count, self.queued = len(self.queued), []
        return count

    def pin(self, image_id: str) -> dict[str, Any]:
        self._call("pin", image_id)
        self.pinned[image_id] = "manual"
        return self._pin(image_id)

    def unpin(self, image_id: str) -> bool:
        self._call("unpin", image_id)
        self.pinned.pop(image_id, None)
        return True

    def get_pins(self) -> dict[str, Any]:
        self._call("get_pins")
        listed = [self._pin(image_id) for image_id in sorted(self.pinned)]
        return {"pinned_images": listed, "pinned_bytes": sum(pin["size"] or 0 for pin in listed),
                "image_cache_max_size": 1 << 20, "over_limit": self.pins_over_limit}

    def _pin(self, image_id: str) -> dict[str, Any]:
        size = next((e["size"] for e in self.cached if e["image_id"] == image_id), None)
        return {"image_id": image_id, "pinned_by": self.pinned[image_id], "cached": size is not None, "size": size}

    def close(self) -> None:
        self.closed = True


@dataclass
class StubFactory:
    """A client factory that hands out ``client`` and keeps the options it was given."""

    client: StubClient
    error: ClientError | None = None
    options: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, **options: Any) -> StubClient:
        self.options.append(options)
        if self.error is not None:
            raise self.error
        return self.client


def run(client: StubClient | StubFactory, *args: str, answers: str | None = None) -> Result:
    factory = client if isinstance(client, StubFactory) else StubFactory(client)
    return CliRunner().invoke(main, ["manage", *args], obj=ManageSession(client_factory=factory), input=answers,
                              catch_exceptions=False)


def entry(
    image_id: str, size: int = 3 << 20, hits: int = 0, accessed: float = NOW, modified: float = NOW,
) -> dict[str, Any]:
    return {"image_id": image_id, "hits": hits, "last_accessed": accessed, "last_modified": modified, "size": size}


def new_id() -> str:
    return str(uuid.uuid4())


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def local(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


# -- list-cached, list-queued ---------------------------------------------------------


def test_list_cached_is_a_table_with_sizes_for_people_and_local_times() -> None:
    first, second = new_id(), new_id()
    client = StubClient(cached=[entry(first, size=3 << 20, hits=5, accessed=NOW + 60), entry(second, size=512)])
    result = run(client, "list-cached")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "Size", "Hits", "Last", "accessed", "Last", "modified", "Pinned"]
    assert set(rule.strip()) == {"─"}
    assert [row.split() for row in rows] == [
        [first, "3.0", "MiB", "5", *local(NOW + 60).split(), *local(NOW).split()],
        [second, "512", "B", "0", *local(NOW).split(), *local(NOW).split()],
    ]
    assert all(line == line.rstrip() for line in result.stdout.splitlines())  # no padding
    assert client.calls == [("get_cached_images",)] and client.closed


def test_a_time_never_set_shows_as_not_available() -> None:
    image_id = new_id()
    result = run(StubClient(cached=[entry(image_id, accessed=0)]), "list-cached")
    assert result.stdout.splitlines()[2].split()[4] == "N/A"
    assert local_time(None) == local_time(0) == local_time("soon") == "N/A"
    assert local_time(NOW) == local(NOW)


@pytest.mark.parametrize("where", ["group", "command"])
def test_list_cached_json_is_the_nodes_records(where: str) -> None:
    records = [entry(new_id(), hits=2), entry(new_id(), accessed=0)]
    args = ["--json", "list-cached"] if where == "group" else ["list-cached", "--json"]
    result = run(StubClient(cached=records), *args)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == records and result.stderr == ""


def test_list_queued_table_and_json() -> None:
    ids = [new_id(), new_id()]
    table = run(StubClient(queued=ids), "list-queued")
    assert table.exit_code == 0
    assert [line.strip() for line in table.stdout.splitlines()[2:]] == ids
    listed = run(StubClient(queued=ids), "list-queued", "--json")
    assert json.loads(listed.stdout) == ids


@pytest.mark.parametrize(("command", "message"), [("list-cached", "No cached images."),
                                                  ("list-queued", "No queued images.")])
def test_empty_lists(command: str, message: str) -> None:
    assert run(StubClient(), command).stdout == message + "\n"
    assert json.loads(run(StubClient(), "--json", command).stdout) == []


# -- pins ------------------------------------------------------------------------------------


def test_list_cached_marks_pinned_images_and_warns_when_they_alone_exceed_the_limit() -> None:
    pinned, ordinary = new_id(), new_id()
    records = [{**entry(pinned), "pinned": True}, {**entry(ordinary), "pinned": False}]
    calm = run(StubClient(cached=records, pinned={pinned: "manual"}), "list-cached")
    assert calm.exit_code == 0 and calm.stderr == ""
    rows = {row.split()[0]: row.split() for row in calm.stdout.splitlines()[2:]}
    assert rows[pinned][-1] == "pinned" and rows[ordinary][-1] != "pinned"
    client = StubClient(cached=records, pinned={pinned: "manual"}, pins_over_limit=True)
    loud = run(client, "list-cached")
    assert loud.exit_code == 0
    assert "Warning: pinned images alone hold 3.0 MiB, more than the cache limit of 1.0 MiB" in one_line(loud.stderr)
    assert client.calls == [("get_cached_images",), ("get_pins",)]
    as_json = run(StubClient(cached=records, pinned={pinned: "manual"}, pins_over_limit=True), "--json", "list-cached")
    assert json.loads(as_json.stdout) == records and "Warning" in as_json.stderr  # stdout stays one document


def test_list_cached_without_pins_asks_nothing_more() -> None:
    client = StubClient(cached=[entry(new_id())])
    assert run(client, "list-cached").exit_code == 0
    assert client.calls == [("get_cached_images",)]


def test_a_pinned_image_already_cached_is_said_so() -> None:
    cached = new_id()
    result = run(StubClient(cached=[entry(cached)]), "pin", cached)
    assert result.exit_code == 0 and result.stdout == f"Pinned image {cached}\n"


def test_list_pinned_table_summary_and_json() -> None:
    cached, absent = new_id(), new_id()
    client = StubClient(cached=[entry(cached, size=512)], pinned={cached: "manual", absent: "prewarm"})
    result = run(client, "list-pinned")
    assert result.exit_code == 0 and result.stderr == ""
    header, _, *rows, summary = result.stdout.splitlines()
    assert header.split() == ["ID", "Pinned", "by", "State", "Size"]
    assert sorted(row.split() for row in rows) == sorted([[cached, "manual", "cached", "512", "B"],
                                                          [absent, "prewarm", "not", "cached"]])
    assert summary == "Pinned images hold 512 B of the 1.0 MiB cache limit."
    document = json.loads(run(client, "--json", "list-pinned").stdout)
    assert document == client.get_pins()
    assert run(StubClient(), "list-pinned").stdout == "No pinned images.\n"
    over = run(StubClient(cached=[entry(cached)], pinned={cached: "manual"}, pins_over_limit=True), "list-pinned")
    assert "nothing else is cached" in over.stderr


# -- commands on ids ---------------------------------------------------------------------

PER_IMAGE = [
    ("queue-image", "queue_image_for_caching", "Queued image {} for caching", "Could not queue image", "queued"),
    ("delete-cached-image", "delete_cached_image", "Deleted cached image {}", "Could not delete cached image",
     "deleted"),
    ("delete-queued-image", "delete_queued_image", "Deleted queued image {}", "Could not delete queued image",
     "deleted"),
    ("pin", "pin", "Pinned image {}; the node is caching it now", "Could not pin image", "pinned"),
    ("unpin", "unpin", "Unpinned image {}", "Could not unpin image", "unpinned"),
]


@pytest.mark.parametrize(("command", "method", "done", "failed", "key"), PER_IMAGE)
def test_one_line_per_id_and_exit_1_when_one_failed(command: str, method: str, done: str, failed: str,
                                                   key: str) -> None:
    first, last = new_id(), new_id()
    client = StubClient(errors={"bad": BadRequest("Invalid image id: an image id is a UUID.", 400)})
    result = run(client, command, first, "bad", last)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [done.format(first), done.format(last)]
    assert one_line(result.stderr) == f"{failed} bad: 400 Bad Request: Invalid image id: an image id is a UUID."
    assert client.calls == [(method, first), (method, "bad"), (method, last)]  # the last one still tried


@pytest.mark.parametrize(("command", "method", "done", "failed", "key"), PER_IMAGE)
def test_ids_as_json(command: str, method: str, done: str, failed: str, key: str) -> None:
    first, missing = new_id(), new_id()
    client = StubClient(errors={missing: NotFound("No image found.", 404)})
    result = run(client, "--json", command, first, missing)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        key: [first], "failed": [{"image_id": missing, "status": 404, "message": "No image found."}]}
    assert one_line(result.stderr) == f"{failed} {missing}: 404 Not Found: No image found."
    everything_done = run(StubClient(), command, "--json", first)
    assert everything_done.exit_code == 0
    assert json.loads(everything_done.stdout) == {key: [first], "failed": []}


def test_a_server_error_on_one_id_does_not_stop_the_others() -> None:
    ids = [new_id(), new_id()]
    client = StubClient(errors={ids[0]: ServerError("The image cache failed: disk on fire", 500)})
    result = run(client, "delete-cached-image", *ids)
    assert result.exit_code == 1 and len(client.calls) == 2
    assert "500 Internal Server Error: The image cache failed: disk on fire" in result.stderr


@pytest.mark.parametrize("error", [Forbidden(FORBIDDEN, 403), Unauthorized("The request you have made requires "
                                   "authentication.", 401), Unreachable("cannot connect to 127.0.0.1:9: refused")])
@pytest.mark.parametrize("as_json", [False, True])
def test_an_error_that_is_not_about_the_image_stops_at_once(error: ClientError, as_json: bool) -> None:
    ids = [new_id(), new_id(), new_id()]
    client = StubClient(errors={ids[1]: error})
    result = run(client, *(["--json"] if as_json else []), "queue-image", *ids)
    assert result.exit_code == 1
    assert [call[1] for call in client.calls] == ids[:2]
    assert result.stdout == ("" if as_json else f"Queued image {ids[0]} for caching\n")
    assert one_line(result.stderr).startswith("Error: ")


def test_ids_are_required_and_not_empty() -> None:
    missing = run(StubClient(), "queue-image")
    assert missing.exit_code == 2 and "Missing argument 'ID...'" in missing.stderr
    empty = run(StubClient(), "delete-cached-image", new_id(), "")
    assert empty.exit_code == 2 and "an image id must not be empty" in empty.stderr


# -- delete-all ---------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "what"), [("delete-all-cached-images", "cached"),
                                               ("delete-all-queued-images", "queued")])
def test_delete_all_with_force_asks_nothing(command: str, what: str) -> None:
    client = StubClient(cached=[entry(new_id()), entry(new_id())], queued=[new_id(), new_id()])
    result = run(client, command, "--force")
    assert result.exit_code == 0
    assert result.stdout == f"Deleted 2 {what} images.\n" and result.stderr == ""
    client = StubClient(cached=[entry(new_id())], queued=[new_id()])
    assert run(client, command, "-f").stdout == f"Deleted 1 {what} image.\n"
    assert json.loads(run(StubClient(), "--json", command, "-f").stdout) == {"num_deleted": 0}


@pytest.mark.parametrize("answer", ["y\n", "yes\n"])
def test_delete_all_asks_on_stderr_and_goes_on_with_yes(answer: str) -> None:
    client = StubClient(cached=[entry(new_id())])
    result = run(client, "--json", "delete-all-cached-images", answers=answer)
    assert result.exit_code == 0
    assert result.stderr.startswith("Delete all cached images on 127.0.0.1:9292? [y/N]: ")
    assert json.loads(result.stdout) == {"num_deleted": 1}


@pytest.mark.parametrize("answer", ["n\n", "\n", None], ids=["no", "default", "end-of-input"])
def test_delete_all_declined_deletes_nothing_and_exits_1(answer: str | None) -> None:
    client = StubClient(queued=[new_id()])
    result = run(client, "-H", "::1", "delete-all-queued-images", answers=answer)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Delete all queued images on [::1]:9292? [y/N]: ")
    assert result.stderr.splitlines()[-1] == "Error: nothing deleted (--force deletes without asking)"
    assert client.calls == [] and len(client.queued) == 1


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (Unauthorized("The request you have made requires authentication.", 401),
         "401 Unauthorized: The request you have made requires authentication."),
        (Forbidden(FORBIDDEN, 403), f"403 Forbidden: {FORBIDDEN}"),
        (NotFound("No such image cache resource.", 404), "404 Not Found: No such image cache resource."),
        (ServerError("bad gateway\nupstream", 502), "502 Bad Gateway: bad gateway upstream"),
        (HTTPStatusError("odd", 599), "599 error: odd"),
        (Unreachable("cannot connect to 127.0.0.1:9: [Errno 111] Connection refused"),
         "cannot connect to 127.0.0.1:9: [Errno 111] Connection refused"),
        (InvalidResponse("GET http://h/v1/cached_images answered 200 with a body that is not JSON"),
         "GET http://h/v1/cached_images answered 200 with a body that is not JSON"),
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_a_client_error_is_one_line_and_exit_1(error: ClientError, line: str, as_json: bool) -> None:
    client = StubClient(errors={"get_cached_images": error})
    result = run(client, *(["--json"] if as_json else []), "list-cached")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {line}\n"


def test_options_that_cannot_work_exit_2() -> None:
    factory = StubFactory(StubClient(), error=ConfigurationError("the ca file /nope does not exist"))
    result = run(factory, "--ca-file", "/nope", "list-queued")
    assert result.exit_code == 2
    assert result.stderr == "Error: the ca file /nope does not exist\n" and result.stdout == ""


# -- options reach the client ------------------------------------------------------------------


def test_default_options() -> None:
    factory = StubFactory(StubClient())
    assert run(factory, "list-queued").exit_code == 0
    assert factory.options == [{"host": "127.0.0.1", "port": 9292, "use_ssl": False, "insecure": False,
                                "doc_root": "/v1"}]


def test_every_option_is_passed_on() -> None:
    factory = StubFactory(StubClient())
    result = run(factory, "-H", "node-7", "-p", "9393", "-A", "tok", "--os-username", "u", "--os-password", "pw",
                 "--os-tenant-name", "ops", "--os-auth-url", "http://ks/v3", "--os-region-name", "R2",
                 "--timeout", "2.5", "--ssl", "-k", "--ca-file", "ca.pem", "--cert-file", "c.pem",
                 "--key-file", "k.pem", "--doc-root", "/v2", "list-queued")
    assert result.exit_code == 0, result.output
    assert factory.options == [{
        "host": "node-7", "port": 9393, "auth_token": "tok", "username": "u", "password": "pw",
        "project_name": "ops", "auth_url": "http://ks/v3", "region_name": "R2", "timeout": 2.5, "use_ssl": True,
        "insecure": True, "ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem", "doc_root": "/v2",
    }]


@pytest.mark.parametrize("args", [["--port", "0"], ["--doc-root", "/v3"], ["--timeout", "-1"]])
def test_bad_option_values_are_usage_errors(args: list[str]) -> None:
    factory = StubFactory(StubClient())
    result = run(factory, *args, "list-queued")
    assert result.exit_code == 2 and factory.options == []


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["manage", "--help"])
    assert result.exit_code == 0
    for command in ("list-cached", "list-queued", "queue-image", "delete-cached-image", "delete-queued-image",
                    "delete-all-cached-images", "delete-all-queued-images", "list-nodes"):
        assert command in result.stdout
    assert "--all-nodes" in CliRunner().invoke(main, ["manage", "list-cached", "--help"]).stdout


# -- connect: the real factory, through get_client ------------------------------------------------


def test_connect_builds_the_node_url_and_reads_the_token_from_the_environment() -> None:
    client = connect(host="node-7", port=9393, doc_root="/v2", environ={"OS_AUTH_TOKEN": "from-env"})
    assert client.base_url == "http://node-7:9393/v2"
    assert client.auth_token == "from-env"
    assert connect(environ={}).base_url == "http://127.0.0.1:9292/v1"
    assert connect(auth_token="given", environ={"OS_AUTH_TOKEN": "from-env"}).auth_token == "given"


def test_connect_tls_files_mean_tls_and_beat_glances_variables(tmp_path: Path) -> None:
    ca, other = tmp_path / "ca.pem", tmp_path / "other.pem"
    ca.write_text("x")
    other.write_text("x")
    client = connect(ca_file=str(ca), environ={"GLANCE_CLIENT_CA_FILE": str(other)})
    assert client.use_ssl and client.base_url.startswith("https://") and client.ca_file == str(ca)
    assert connect(use_ssl=True, environ={"GLANCE_CLIENT_CA_FILE": str(other)}).ca_file == str(other)
    with pytest.raises(ConfigurationError, match="needs both cert_file and key_file"):
        connect(cert_file=str(ca), environ={})


def test_keystone_credentials_reach_get_client() -> None:
    client = connect(auth_url="http://ks/v3", username="u", password="pw", project_name="ops", region_name="R2",
                     environ={})
    creds = client.creds
    assert (creds.strategy, creds.auth_url, creds.username, creds.tenant, creds.region) == (
        "keystone", "http://ks/v3", "u", "ops", "R2")
    assert client.host == "127.0.0.1"  # the node named, not the catalog's endpoint


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--cert-file", "{file}"], {}, "a client certificate needs both cert_file and key_file"),
        (["--ca-file", "/does/not/exist"], {}, "the ca file /does/not/exist does not exist"),
        ([], {"OS_AUTH_URL": "http://ks/v3", "OS_USERNAME": "u"}, "Keystone authentication needs password"),
    ],
)
def test_the_real_factory_refuses_bad_options_with_exit_2(args: list[str], env: dict[str, str], message: str,
                                                          tmp_path: Path) -> None:
    existing = tmp_path / "cert.pem"
    existing.write_text("x")
    argv = ["manage", *(arg.format(file=existing) for arg in args), "list-cached"]
    result = CliRunner().invoke(main, argv, env=env)
    assert result.exit_code == 2, result.output
    assert one_line(result.stderr).startswith(f"Error: {message}") and result.stdout == ""


# -- list-cached --all-nodes: the fleet ------------------------------------------------------------


def copy(url: str, site: str = "east", state: str = "cached", size: int | None = 3 << 20, nbytes: int | None = None,
         live: bool = True) -> dict[str, Any]:
    return {"url": url, "site": site, "state": state, "size": size,
            "bytes": size if nbytes is None else nbytes, "live": live}


def test_all_nodes_is_a_row_per_copy_with_sites_fills_and_stale_nodes() -> None:
    first, second = new_id(), new_id()
    fleet = [
        {"image_id": first, "nodes": [copy("http://a.east:9292"),
                                      copy("http://b.east:9292", state="filling", nbytes=1 << 20),
                                      copy("http://c.west:9292", site="west", live=False)]},
        {"image_id": second, "nodes": [copy("http://c.west:9292", site="west", state="filling", size=None,
                                            nbytes=512)]},
    ]
    client = StubClient(fleet=fleet)
    result = run(client, "list-cached", "--all-nodes")
    assert result.exit_code == 0 and result.stderr == ""
    header, _, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "Node", "Site", "Node", "state", "Copy", "Bytes"]
    assert [row.split() for row in rows] == [
        [first, "http://a.east:9292", "east", "live", "cached", "3.0", "MiB"],
        [first, "http://b.east:9292", "east", "live", "filling", "1.0", "MiB", "of", "3.0", "MiB", "(33", "%)"],
        [first, "http://c.west:9292", "west", "stale", "cached", "3.0", "MiB"],
        [second, "http://c.west:9292", "west", "live", "filling", "512", "B", "of", "unknown", "size"],
    ]
    assert client.calls == [("get_fleet",)] and client.closed


@pytest.mark.parametrize("args", [["--json", "list-cached", "--all-nodes"], ["list-cached", "--all-nodes", "--json"]])
def test_all_nodes_json_is_the_images_of_the_view(args: list[str]) -> None:
    fleet = [{"image_id": new_id(), "nodes": [copy("http://a:9292", state="filling", nbytes=0, live=False)]}]
    result = run(StubClient(fleet=fleet), *args)
    assert result.exit_code == 0 and result.stderr == ""
    assert json.loads(result.stdout) == fleet


def test_all_nodes_of_a_fleet_with_nothing_cached() -> None:
    assert run(StubClient(), "list-cached", "--all-nodes").stdout == "No image is cached or being filled on any node.\n"
    assert json.loads(run(StubClient(), "--json", "list-cached", "--all-nodes").stdout) == []


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (HTTPStatusError("Centralized caching is not enabled.", 409),
         "Error: 127.0.0.1:9292 has no central index, so it knows of no other nodes: --all-nodes needs a node "
         "whose image_cache_driver is central"),
        (HTTPStatusError("Method not allowed here; use PUT, DELETE.", 405),
         "Error: 127.0.0.1:9292 does not list the images of its nodes (GET /v2/cache/nodes): it runs an older "
         "imagecache"),
        (Forbidden(FORBIDDEN, 403), f"Error: 403 Forbidden: {FORBIDDEN}"),
        (ServerError("The image cache failed: the central index at db failed: gone", 500),
         "Error: 500 Internal Server Error: The image cache failed: the central index at db failed: gone"),
        (InvalidResponse("GET http://h/v2/cache/nodes answered with something else than the images of the nodes"),
         "Error: GET http://h/v2/cache/nodes answered with something else than the images of the nodes"),
        (Unreachable("cannot connect to 127.0.0.1:9292: refused"), "Error: cannot connect to 127.0.0.1:9292: refused"),
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_all_nodes_on_a_node_alone_or_failing_is_one_line_and_exit_1(error: ClientError, line: str,
                                                                     as_json: bool) -> None:
    result = run(StubClient(errors={"get_fleet": error}), *(["--json"] if as_json else []), "list-cached",
                 "--all-nodes")
    assert result.exit_code == 1 and result.stdout == ""
    assert one_line(result.stderr) == line


def test_without_all_nodes_list_cached_does_not_ask_for_the_fleet() -> None:
    client = StubClient(cached=[entry(new_id())], fleet=[{"image_id": new_id(), "nodes": [copy("http://a")]}])
    assert run(client, "list-cached").exit_code == 0
    assert client.calls == [("get_cached_images",)]


@pytest.mark.parametrize("args", [["--all-nodes=yes"], ["--all-node", "x"], ["--all-nodes", new_id()]])
def test_bad_all_nodes_arguments_are_usage_errors(args: list[str]) -> None:
    client = StubClient()
    result = run(client, "list-cached", *args)
    assert result.exit_code == 2 and client.calls == []


NODES = st.fixed_dictionaries({
    "url": st.text(min_size=1, max_size=10), "site": st.text(min_size=1, max_size=5),
    "state": st.sampled_from(["cached", "filling"]), "size": st.none() | st.integers(0, 1 << 50),
    "bytes": st.integers(0, 1 << 50), "live": st.booleans(),
})


@given(images=st.lists(st.fixed_dictionaries({"image_id": st.uuids().map(str), "nodes": st.lists(NODES, max_size=4)}),
                       max_size=5))
def test_a_row_per_copy_in_the_views_order_whatever_the_numbers(images: list[dict[str, Any]]) -> None:
    shown = rows(images)
    assert [(row[0], row[1]) for row in shown] == [
        (image["image_id"], node["url"]) for image in images for node in image["nodes"]]
    for row, node in zip(shown, [node for image in images for node in image["nodes"]], strict=True):
        assert row[3] == ("live" if node["live"] else "stale") and row[4] == node["state"]
        assert (" of " in row[5]) == (node["state"] == "filling")
