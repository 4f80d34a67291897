"""The REST API, version 1, at /api/v1/: members, identities, activities, kinds.

Each operation authenticates a workspace API key and checks its scope (auth.py); errors
share one JSON shape (errors.py); writes accept an Idempotency-Key (core/idempotency.py).
The OpenAPI schema is at /api/v1/openapi.json and the reference page at /api/v1/docs.
"""

from __future__ import annotations

from ninja import NinjaAPI

from circolo.api import activities, community, members
from circolo.api.docs import ReferencePage
from circolo.api.errors import install_error_handlers

DESCRIPTION = (
    "Circolo's REST API. Authenticate with a workspace API key (Authorization: Bearer ck_… or"
    " X-Api-Key). Errors are {detail, errors: {field: message}}. Unknown body fields are"
    " rejected. Lists use cursor pagination ({items, next_cursor}). POST/PATCH/PUT accept an"
    " Idempotency-Key header."
)

api = NinjaAPI(
    title="Circolo API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    docs=ReferencePage(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
install_error_handlers(api)
api.add_router("", members.router)
api.add_router("", activities.router)
api.add_router("", community.router)
