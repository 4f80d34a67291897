"""API test fixtures: keys for `workspace` and `other_workspace`, and a JSON client."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from circolo.core.apikeys import SCOPES, apikey_create
from circolo.core.models import ApiKey, Workspace

ALL_SCOPES = tuple(SCOPES)


@dataclass
class Key:
    row: ApiKey
    raw: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.raw}"}


class ApiClient:
    """Django's test client speaking JSON to /api/v1/ with an optional key."""

    def __init__(self, key: Key | None = None, *, header: str = "bearer") -> None:
        self.client = Client()
        self.key = key
        self.header = header

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.key is not None:
            if self.header == "bearer":
                headers["Authorization"] = f"Bearer {self.key.raw}"
            else:
                headers["X-Api-Key"] = self.key.raw
        headers.update(extra or {})
        return headers

    def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.get(
            f"/api/v1{path}", params or {}, headers=self._headers(kw.get("headers"))
        )

    def send(self, method: str, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return self.client.generic(
            method,
            f"/api/v1{path}",
            data,
            content_type="application/json",
            headers=self._headers(headers),
        )

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self.send("POST", path, body, headers)

    def patch(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self.send("PATCH", path, body, headers)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Personas get passwords; the production hasher would make each test slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_key(owner: Any) -> Callable[..., Key]:
    def make(
        workspace: Workspace | None = None, scopes: Sequence[str] = ALL_SCOPES, name: str = "k"
    ) -> Key:
        row, raw = apikey_create(
            workspace=workspace or owner.workspace, name=name, scopes=scopes, created_by=owner.user
        )
        return Key(row=row, raw=raw)

    return make


@pytest.fixture
def key(make_key: Callable[..., Key]) -> Key:
    return make_key()


@pytest.fixture
def api(key: Key) -> ApiClient:
    return ApiClient(key)


@pytest.fixture
def outsider_api(make_key: Callable[..., Key], other_workspace: Workspace) -> ApiClient:
    """A key with every scope, of another workspace."""
    return ApiClient(make_key(other_workspace))
