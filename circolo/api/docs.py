"""The API reference page at /api/v1/docs, rendered on the server from the OpenAPI schema.

ninja's Swagger and Redoc pages load their scripts from a CDN unless "ninja" is an installed
app, and neither is translated; this page loads nothing from outside, uses the site's base
template and shows every operation (method, path, summary, scope, parameters, body fields,
responses) in the reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext
from ninja.openapi.docs import DocsBase

from circolo.core.apikeys import SCOPES

if TYPE_CHECKING:
    from ninja import NinjaAPI

_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class FieldDoc:
    name: str
    type: str
    required: bool
    description: str
    location: str = ""


@dataclass
class ResponseDoc:
    status: str
    description: str
    schema: str


@dataclass
class OperationDoc:
    method: str
    path: str
    anchor: str
    summary: str
    description: str
    scope: str
    tag: str
    parameters: list[FieldDoc] = field(default_factory=list)
    body_schema: str = ""
    body: list[FieldDoc] = field(default_factory=list)
    responses: list[ResponseDoc] = field(default_factory=list)


def _status_text(status: str, fallback: str) -> str:
    texts = {
        "200": gettext("OK"),
        "201": gettext("Created"),
        "400": gettext("Bad request"),
        "401": gettext("Unauthorized"),
        "403": gettext("Forbidden"),
        "404": gettext("Not found"),
        "409": gettext("Conflict"),
        "413": gettext("Request too large"),
        "422": gettext("Unprocessable request"),
    }
    return texts.get(status, fallback)


def _translated(text: str) -> str:
    # Summaries and descriptions are marked with gettext_noop where they are written.
    return gettext(text) if text else ""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_label(schema: dict[str, Any]) -> str:
    """A short readable type of a JSON schema ("integer", "list of IdentityIn", "string | null")."""
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "anyOf" in schema:
        return " | ".join(type_label(option) for option in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(repr(value) for value in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        return gettext("list of %(type)s") % {"type": type_label(schema.get("items", {}))}
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        if isinstance(extra, dict) and extra:
            return gettext("object of %(type)s") % {"type": type_label(extra)}
    if kind == "string" and schema.get("format"):
        return f"string ({schema['format']})"
    return str(kind)


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return name, components.get(name, {})
    return schema.get("title", ""), schema


def _fields(schema: dict[str, Any]) -> list[FieldDoc]:
    required = set(schema.get("required", []))
    return [
        FieldDoc(
            name=name,
            type=type_label(details),
            required=name in required,
            description=_translated(details.get("description", "")),
        )
        for name, details in schema.get("properties", {}).items()
    ]


def operations_from_schema(schema: dict[str, Any]) -> list[OperationDoc]:
    """Every operation of an OpenAPI schema, in path order, ready for the template."""
    components = schema.get("components", {}).get("schemas", {})
    found: list[OperationDoc] = []
    for path, methods in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = methods.get(method)
            if operation is None:
                continue
            doc = OperationDoc(
                method=method.upper(),
                path=path,
                anchor=operation.get("operationId", f"{method}-{path}"),
                summary=_translated(operation.get("summary", "")),
                description=_translated(operation.get("description", "")),
                scope=operation.get("x-required-scope", ""),
                tag=(operation.get("tags") or [""])[0],
            )
            for parameter in operation.get("parameters", []):
                doc.parameters.append(
                    FieldDoc(
                        name=parameter["name"],
                        type=type_label(parameter.get("schema", {})),
                        required=bool(parameter.get("required")),
                        description=_translated(parameter.get("description", "")),
                        location=parameter.get("in", ""),
                    )
                )
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                name, body = _resolve(media.get("schema", {}), components)
                doc.body_schema = name
                doc.body = _fields(body)
            for status, response in sorted(operation.get("responses", {}).items()):
                schema_name = ""
                for media in response.get("content", {}).values():
                    schema_name = type_label(media.get("schema", {}))
                doc.responses.append(
                    ResponseDoc(
                        status=str(status),
                        description=_status_text(str(status), str(response.get("description", ""))),
                        schema=schema_name,
                    )
                )
            found.append(doc)
    return found


def schemas_from_schema(schema: dict[str, Any]) -> list[tuple[str, list[FieldDoc]]]:
    """(name, fields) of every named schema, sorted by name."""
    components = schema.get("components", {}).get("schemas", {})
    return [(name, _fields(components[name])) for name in sorted(components)]


class ReferencePage(DocsBase):
    """ninja docs renderer: the server-rendered reference page."""

    template = "api/docs.html"

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        schema = api.get_openapi_schema(path_params=kwargs)
        operations = operations_from_schema(dict(schema))
        schemas = schemas_from_schema(dict(schema))
        context = {
            "api": api,
            "openapi_url": self.get_openapi_url(api, kwargs),
            "operations": operations,
            "schemas": schemas,
            "scopes": [(scope, str(label)) for scope, label in SCOPES.items()],
            "batch_limit": settings.CIRCOLO_API_BATCH_LIMIT,
            "properties_max_kb": settings.CIRCOLO_PROPERTIES_MAX_BYTES // 1024,
            "future_hours": settings.CIRCOLO_FUTURE_TOLERANCE_HOURS,
        }
        return render(request, self.template, context)
