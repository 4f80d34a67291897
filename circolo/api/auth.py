"""API key authentication and scopes.

A key is sent as "Authorization: Bearer ck_…" or as "X-Api-Key: ck_…". A missing, unknown or
revoked key answers 401; a valid key without the operation's scope answers 403 naming the
scope. The workspace of every request is the key's workspace: no URL names a workspace, so
rows of other workspaces cannot be reached.
"""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpRequest
from ninja.security import APIKeyHeader, HttpBearer

from circolo.api.errors import ScopeDenied
from circolo.core.apikeys import SCOPES, apikey_authenticate, apikey_has_scope
from circolo.core.models import ApiKey, Workspace


class ApiRequest(HttpRequest):
    """A request that passed key authentication."""

    auth: ApiKey


def _check(raw: str | None, scope: str) -> ApiKey | None:
    if not raw:
        return None
    api_key = apikey_authenticate(raw)
    if api_key is None:
        return None
    if not apikey_has_scope(api_key=api_key, scope=scope):
        raise ScopeDenied(scope)
    return api_key


class ApiKeyBearer(HttpBearer):
    """Authorization: Bearer ck_<prefix>_<secret>"""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return _check(token, self.scope)


class ApiKeyHeader(APIKeyHeader):
    """X-Api-Key: ck_<prefix>_<secret>"""

    param_name = "X-Api-Key"

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return _check(key, self.scope)


def key_auth(scope: str) -> list[Any]:
    """The auth of an operation needing `scope` (for the router's `auth=`)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return [ApiKeyBearer(scope), ApiKeyHeader(scope)]


def scoped(scope: str) -> dict[str, Any]:
    """Operation keyword arguments for an operation needing `scope`: its auth and the scope
    written into the OpenAPI schema as "x-required-scope" (the docs page shows it)."""
    return {"auth": key_auth(scope), "openapi_extra": {"x-required-scope": scope}}


def require_scope(request: HttpRequest, scope: str) -> ApiKey:
    """The request's key; raises ScopeDenied (403) unless it holds `scope`."""
    api_key = cast(ApiKey | None, getattr(request, "auth", None))
    if api_key is None or not apikey_has_scope(api_key=api_key, scope=scope):
        raise ScopeDenied(scope)
    return api_key


def request_workspace(request: HttpRequest) -> Workspace:
    """The workspace every query of this request is limited to."""
    return cast(ApiRequest, request).auth.workspace
