"""The OpenAPI schema and the server-rendered reference page."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client

from circolo.core.apikeys import SCOPES

OPERATIONS = {
    ("get", "/api/v1/members"),
    ("post", "/api/v1/members"),
    ("get", "/api/v1/members/{member_id}"),
    ("patch", "/api/v1/members/{member_id}"),
    ("get", "/api/v1/members/{member_id}/identities"),
    ("post", "/api/v1/members/{member_id}/identities"),
    ("post", "/api/v1/activities"),
    ("get", "/api/v1/activities"),
    ("post", "/api/v1/activities/batch"),
    ("get", "/api/v1/kinds"),
    ("get", "/api/v1/community/spaces"),
    ("get", "/api/v1/community/threads"),
    ("post", "/api/v1/community/threads"),
    ("get", "/api/v1/community/threads/{thread_id}"),
    ("post", "/api/v1/community/threads/{thread_id}/replies"),
}


def test_openapi_schema(db: Any) -> None:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    found = {(m, p) for p, methods in schema["paths"].items() for m in methods}
    assert found == OPERATIONS
    assert set(schema["components"]["securitySchemes"]) == {"ApiKeyBearer", "ApiKeyHeader"}
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            assert operation["x-required-scope"] in SCOPES, (method, path)
            assert operation["summary"]
            assert "401" in operation["responses"] and "403" in operation["responses"]
            headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
            assert (method != "get") == ("Idempotency-Key" in headers), (method, path)


def test_docs_page_lists_every_operation_without_external_assets(db: Any) -> None:
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    for method, path in OPERATIONS:
        assert f"{method.upper()} {path}" in html
    for scope in SCOPES:
        assert scope in html
    assert "Idempotency-Key" in html
    assert "IdentityIn" in html  # schemas are listed with their fields
    # Nothing is loaded from another host.
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", html)
    assert "/api/v1/openapi.json" in html


def test_docs_page_follows_the_language(db: Any) -> None:
    response = Client().get("/api/v1/docs", headers={"Accept-Language": "zh-hans"})
    assert response.status_code == 200
    assert '<html lang="zh-hans">' in response.content.decode()
