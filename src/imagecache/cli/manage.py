"""``imagecache manage``: the cache of one node, managed over its API.

Glance's ``glance-cache-manage`` as a click group: the same commands
(``list-cached``, ``list-queued``, ``queue-image``, ``delete-cached-image``,
``delete-all-cached-images``, ``delete-queued-image``,
``delete-all-queued-images``) and option names, speaking to a node through
:class:`imagecache.client.CacheClient`; pins (``pin``, ``unpin``,
``list-pinned``); and, across the nodes sharing a central index,
``list-nodes ID`` (where an image is cached) and ``list-cached --all-nodes``
(which node holds or is filling which image).

Output: tables for people (rich), ``--json`` for scripts: then stdout holds
exactly one JSON document and every message goes to stderr.  Exit status: 0
when everything asked was done, 1 when the node refused or failed something
(or could not be reached, or a confirmation was declined), 2 for usage
errors (options that cannot work, such as a client certificate without its
key).

How the client is made is :mod:`imagecache.cli.manage_session`'s; the client
package, urllib3 and rich are imported only when a command runs.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import click

from imagecache.cli._common import confirm_or_stop, human_size, plural, print_json, print_table
from imagecache.cli.fleet import show_fleet
from imagecache.cli.manage_session import (
    ManageSession,
    client_errors,
    describe,
    fails_alone,
    session,
)
from imagecache.cli.node_options import given, node_options

if TYPE_CHECKING:
    from imagecache.client import CacheClient


def local_time(timestamp: Any) -> str:
    """An epoch timestamp as local time to the second; ``N/A`` for none (Glance's 0)."""
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool) or timestamp <= 0:
        return "N/A"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def json_flag(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` after the command name too (``manage list-cached --json``)."""
    flag = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout (messages go to stderr).")
    return flag(command)


@click.group()
@node_options
@json_flag
@click.pass_context
def manage(ctx: click.Context, /, as_json: bool, **options: Any) -> None:
    """Manage one node's image cache over its API (glance-cache-manage).

    Needs an admin: a token (--os-auth-token, $OS_AUTH_TOKEN) or Keystone
    credentials (--os-auth-url, --os-username, --os-password,
    --os-project-name, or their OS_* variables).

    Exit status: 0 done; 1 the node refused or failed (bad token, not an
    admin, unreachable, an image that failed) or a confirmation was
    declined; 2 usage errors.
    """
    before = ctx.obj if isinstance(ctx.obj, ManageSession) else ManageSession()
    state = replace(before, options=given(options),
                    as_json=as_json, _client=None)
    ctx.obj = state
    ctx.call_on_close(state.close)


#: What a node's refusal of ``GET /v2/cache/nodes`` means to ``--all-nodes``, by status.
FLEET_REFUSALS = {
    409: "{node} has no central index, so it knows of no other nodes: --all-nodes needs a node whose "
         "image_cache_driver is central",
    405: "{node} does not list the images of its nodes (GET /v2/cache/nodes): it runs an older imagecache",
}


def fleet_of(state: ManageSession) -> list[dict[str, Any]]:
    """The node's fleet view; a node alone (or too old to tell) ends the command in one clear line."""
    from imagecache.client import HTTPStatusError

    with client_errors():
        try:
            return state.client().get_fleet()
        except HTTPStatusError as exc:
            if exc.status not in FLEET_REFUSALS:
                raise
            raise click.ClickException(FLEET_REFUSALS[exc.status].format(node=state.node)) from None


@manage.command("list-cached")
@click.option("--all-nodes", is_flag=True,
              help="Every node of the node's central index: which nodes (and sites) hold or are filling "
                   "each image, stale nodes marked.")
@json_flag
@click.pass_context
def list_cached(ctx: click.Context, all_nodes: bool, as_json: bool) -> None:
    """List cached images with size, hits and times; with --all-nodes, every node's copies.

    --all-nodes asks a node on the central index: a row per node per image,
    the nodes of the answering node's site first; a fill in progress shows
    its bytes of the image's size, and a node silent for node_stale_after
    seconds is "stale".  imagecache db images shows the same from the
    database.
    """
    state = session(ctx, as_json)
    if all_nodes:
        show_fleet(fleet_of(state), state.as_json)
        return
    with client_errors():
        images = state.client().get_cached_images()
    if state.as_json:
        print_json(images)
    elif not images:
        click.echo("No cached images.")
    else:
        rows = [
            (str(image.get("image_id")), human_size(image.get("size")), str(image.get("hits")),
             local_time(image.get("last_accessed")), local_time(image.get("last_modified")),
             "pinned" if image.get("pinned") is True else "")
            for image in images
        ]
        print_table([("ID", "left"), ("Size", "right"), ("Hits", "right"),
                     ("Last accessed", "left"), ("Last modified", "left"), ("Pinned", "left")], rows)
    if any(image.get("pinned") is True for image in images):
        warn_if_pins_over_limit(state)


def warn_if_pins_over_limit(state: ManageSession, pins: dict[str, Any] | None = None) -> None:
    """A warning on stderr when pinned images alone exceed the node's limit (nothing else is cached then)."""
    from imagecache.client import ClientError

    if pins is None:
        try:
            pins = state.client().get_pins()
        except ClientError:
            return  # the listing was answered; the warning is a courtesy
    if pins.get("over_limit") is True:
        click.echo(f"Warning: pinned images alone hold {human_size(pins.get('pinned_bytes'))}, more than the "
                   f"cache limit of {human_size(pins.get('image_cache_max_size'))}: nothing else is cached "
                   "until images are unpinned or the limit is raised.", err=True)


@manage.command("list-queued")
@json_flag
@click.pass_context
def list_queued(ctx: click.Context, as_json: bool) -> None:
    """List the ids queued for caching."""
    state = session(ctx, as_json)
    with client_errors():
        queued = state.client().get_queued_images()
    if state.as_json:
        print_json(queued)
    elif not queued:
        click.echo("No queued images.")
    else:
        print_table([("ID", "left")], [(str(image_id),) for image_id in queued])


@manage.command("list-nodes")
@click.argument("image_id", metavar="ID")
@json_flag
@click.pass_context
def list_nodes(ctx: click.Context, image_id: str, as_json: bool) -> None:
    """List the nodes that cache an image (a node with the central index).

    Only live nodes are listed: a node silent for node_stale_after seconds is
    left out (``imagecache db nodes`` shows every node and its state).
    """
    if not image_id:
        raise click.BadParameter("an image id must not be empty", ctx, param_hint="ID")
    state = session(ctx, as_json)
    with client_errors():
        nodes = state.client().get_cached_nodes(image_id)
    if state.as_json:
        print_json(nodes)
    elif not nodes:
        click.echo(f"Image {image_id} is not cached on any live node.")
    else:
        print_table([("Node reference URL", "left")], [(node,) for node in nodes])


def _non_empty(ctx: click.Context, param: click.Parameter, ids: tuple[str, ...]) -> tuple[str, ...]:
    if any(not image_id for image_id in ids):
        raise click.BadParameter("an image id must not be empty", ctx, param)
    return ids


def image_ids(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("image_ids", metavar="ID...", nargs=-1, required=True, callback=_non_empty)(command)


@dataclass(frozen=True)
class PerImage:
    """A command that acts on each id in turn: what to call, and what to say."""

    call: Callable[[CacheClient, str], Any]
    done_key: str  # the JSON key of the ids done
    done: str | Callable[[str, Any], str]  # the line for an id done (a format, or made from the id and the answer)
    failed: str  # the start of the line for an id that failed


def run_per_image(state: ManageSession, action: PerImage, ids: Sequence[str]) -> None:
    """``action`` on every id, one line each; exit 1 if any failed.

    An error that is not about the image (refused token, not an admin,
    unreachable node) stops at once: every other id would fail alike.
    """
    from imagecache.client import ClientError, HTTPStatusError

    done: list[str] = []
    failed: list[dict[str, Any]] = []
    with client_errors():
        client = state.client()
        for image_id in ids:
            try:
                answer = action.call(client, image_id)
            except ClientError as exc:
                if not fails_alone(exc):
                    raise
                click.echo(f"{action.failed} {image_id}: {describe(exc)}", err=True)
                status = exc.status if isinstance(exc, HTTPStatusError) else None
                failed.append({"image_id": image_id, "status": status, "message": exc.message})
                continue
            done.append(image_id)
            if not state.as_json:
                click.echo(action.done(image_id, answer) if callable(action.done)
                           else action.done.format(image_id=image_id))
    if state.as_json:
        print_json({action.done_key: done, "failed": failed})
    if failed:
        raise SystemExit(1)


@manage.command("queue-image")
@image_ids
@json_flag
@click.pass_context
def queue_image(ctx: click.Context, image_ids: tuple[str, ...], as_json: bool) -> None:
    """Queue images for the node's prefetcher to cache."""
    action = PerImage(lambda client, image_id: client.queue_image_for_caching(image_id),
                      "queued", "Queued image {image_id} for caching", "Could not queue image")
    run_per_image(session(ctx, as_json), action, image_ids)


def pinned_line(image_id: str, pin: Any) -> str:
    if isinstance(pin, dict) and pin.get("cached") is False:
        return f"Pinned image {image_id}; the node is caching it now"
    return f"Pinned image {image_id}"


@manage.command("pin")
@image_ids
@json_flag
@click.pass_context
def pin(ctx: click.Context, image_ids: tuple[str, ...], as_json: bool) -> None:
    """Pin images: never evicted from the node's cache; one not cached yet is cached now.

    Pinned images may hold the cache past image_cache_max_size (then nothing
    else is cached, and the node says so); imagecache manage unpin undoes it.
    """
    action = PerImage(lambda client, image_id: client.pin(image_id), "pinned", pinned_line, "Could not pin image")
    run_per_image(session(ctx, as_json), action, image_ids)


@manage.command("unpin")
@image_ids
@json_flag
@click.pass_context
def unpin(ctx: click.Context, image_ids: tuple[str, ...], as_json: bool) -> None:
    """Unpin images: they stay cached, as ordinary least-recently-used entries."""
    action = PerImage(lambda client, image_id: client.unpin(image_id), "unpinned",
                      "Unpinned image {image_id}", "Could not unpin image")
    run_per_image(session(ctx, as_json), action, image_ids)


@manage.command("list-pinned")
@json_flag
@click.pass_context
def list_pinned(ctx: click.Context, as_json: bool) -> None:
    """List pinned images, cached or not, and what they hold of the cache limit."""
    state = session(ctx, as_json)
    with client_errors():
        pins = state.client().get_pins()
    if state.as_json:
        print_json(pins)
        return
    listed = [pin for pin in pins["pinned_images"] if isinstance(pin, dict)]
    if not listed:
        click.echo("No pinned images.")
        return
    rows = [(str(pin.get("image_id")), str(pin.get("pinned_by")), "cached" if pin.get("cached") else "not cached",
             human_size(pin.get("size")) if pin.get("cached") else "") for pin in listed]
    print_table([("ID", "left"), ("Pinned by", "left"), ("State", "left"), ("Size", "right")], rows)
    click.echo(f"Pinned images hold {human_size(pins.get('pinned_bytes'))} of the "
               f"{human_size(pins.get('image_cache_max_size'))} cache limit.")
    warn_if_pins_over_limit(state, pins)


@manage.command("delete-cached-image")
@image_ids
@json_flag
@click.pass_context
def delete_cached_image(ctx: click.Context, image_ids: tuple[str, ...], as_json: bool) -> None:
    """Remove images from the cache (not from the store)."""
    action = PerImage(lambda client, image_id: client.delete_cached_image(image_id),
                      "deleted", "Deleted cached image {image_id}", "Could not delete cached image")
    run_per_image(session(ctx, as_json), action, image_ids)


@manage.command("delete-queued-image")
@image_ids
@json_flag
@click.pass_context
def delete_queued_image(ctx: click.Context, image_ids: tuple[str, ...], as_json: bool) -> None:
    """Take images off the queue."""
    action = PerImage(lambda client, image_id: client.delete_queued_image(image_id),
                      "deleted", "Deleted queued image {image_id}", "Could not delete queued image")
    run_per_image(session(ctx, as_json), action, image_ids)


def force_flag(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")(command)


def delete_all(state: ManageSession, what: str, force: bool, call: Callable[[CacheClient], int]) -> None:
    if not force:
        confirm_or_stop(f"Delete all {what} images on {state.node}?")
    with client_errors():
        deleted = call(state.client())
    if state.as_json:
        print_json({"num_deleted": deleted})
    else:
        click.echo(f"Deleted {plural(deleted, f'{what} image')}.")


@manage.command("delete-all-cached-images")
@force_flag
@json_flag
@click.pass_context
def delete_all_cached_images(ctx: click.Context, force: bool, as_json: bool) -> None:
    """Empty the cache (asks first, unless --force)."""
    delete_all(session(ctx, as_json), "cached", force, lambda client: client.delete_all_cached_images())


@manage.command("delete-all-queued-images")
@force_flag
@json_flag
@click.pass_context
def delete_all_queued_images(ctx: click.Context, force: bool, as_json: bool) -> None:
    """Empty the queue (asks first, unless --force)."""
    delete_all(session(ctx, as_json), "queued", force, lambda client: client.delete_all_queued_images())
