"""Credentials: the auth strategy and Keystone's inputs, as Glance's ``creds`` dict held them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from imagecache.client.errors import ConfigurationError

AUTH_STRATEGIES = ("noauth", "keystone")


@dataclass(frozen=True)
class Credentials:
    """What Glance's ``creds`` dict held: the auth strategy and Keystone's inputs.

    Accepts Glance's keys, old and new (``tenant`` or ``project``,
    ``user_domain_id`` ...); domains default to the name ``Default``.
    """

    strategy: str = "noauth"
    auth_url: str | None = None
    username: str | None = None
    password: str | None = None
    tenant: str | None = None
    region: str | None = None
    user_domain_name: str | None = None
    user_domain_id: str | None = None
    project_domain_name: str | None = None
    project_domain_id: str | None = None

    def __post_init__(self) -> None:
        if self.strategy not in AUTH_STRATEGIES:
            raise ConfigurationError(
                f"auth strategy must be one of {', '.join(AUTH_STRATEGIES)}, not {self.strategy!r}"
            )
        if self.strategy == "keystone" and not self.auth_url:
            raise ConfigurationError(
                "the keystone auth strategy needs an auth_url (or OS_AUTH_URL in the environment)"
            )

    @classmethod
    def from_mapping(cls, creds: Mapping[str, Any] | None) -> Credentials:
        """From a Glance-style dict; None and empty values count as unset."""
        values = {key: value for key, value in (creds or {}).items() if value not in (None, "")}
        if "project" in values:
            values.setdefault("tenant", values.pop("project"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown credential key(s) {', '.join(unknown)}; known: {', '.join(sorted(known | {'project'}))}"
            )
        return cls(**values)

    @property
    def can_authenticate(self) -> bool:
        """Whether Keystone can be asked for a token (strategy, URL, user and password)."""
        return self.strategy == "keystone" and bool(self.auth_url and self.username and self.password)

    def missing(self) -> list[str]:
        return [name for name in ("username", "password") if not getattr(self, name)]

    def keystone_arguments(self) -> dict[str, str]:
        """keystoneauth1 Password plugin arguments: project scoped, domains by id or name."""
        assert self.auth_url and self.username and self.password
        arguments = {"auth_url": self.auth_url, "username": self.username, "password": self.password}
        if self.tenant:
            arguments["project_name"] = self.tenant
        for who in ("user", "project"):
            domain_id = getattr(self, f"{who}_domain_id")
            if domain_id:
                arguments[f"{who}_domain_id"] = domain_id
            else:
                arguments[f"{who}_domain_name"] = getattr(self, f"{who}_domain_name") or "Default"
        return arguments
