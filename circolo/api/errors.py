"""One error shape for the whole API: {"detail": "...", "errors": {"field": "message"}}.

Exception handlers turn ninja's validation errors, authentication failures, missing scopes,
missing rows and our own ApiError into that shape, with messages in the request's language.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import Field


class ErrorOut(Schema):
    """Every error answer."""

    detail: str = Field(description="What went wrong, in a sentence.")
    errors: dict[str, str] = Field(
        default_factory=dict,
        description='Field -> message for each bad input; nested fields read "items.3.kind".',
    )


# Error answers every idempotent write can give: bad input, no key, missing scope, the same
# Idempotency-Key still in progress, and the same key with another body.
WRITE_ERRORS = (400, 401, 403, 409, 422)


def error_responses(*codes: int) -> dict[int, type[ErrorOut]]:
    """The `response=` entries of an operation's documented error answers."""
    return dict.fromkeys(codes, ErrorOut)


class ApiError(Exception):
    """Raise from an operation to answer `status` with the standard error body."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or {}
        self.headers = headers or {}


class ScopeDenied(Exception):
    """The API key is valid but was not granted `scope`."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


def error_body(detail: str, errors: dict[str, str] | None = None) -> dict[str, Any]:
    return {"detail": detail, "errors": errors or {}}


def invalid(errors: dict[str, str]) -> ApiError:
    """A 400 for field errors."""
    return ApiError(400, gettext("Some fields are not valid."), errors)


def not_found() -> ApiError:
    return ApiError(404, gettext("Not found."))


# Sources ninja puts first in an error location; body errors also carry the parameter name.
_PARAM_SOURCES = {"query", "path", "header", "cookie", "form", "file"}


def field_name(loc: list[Any] | tuple[Any, ...]) -> str:
    """ "items.3.kind" from ninja's ["body", "payload", "items", 3, "kind"]."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[2:]
    elif parts and parts[0] in _PARAM_SOURCES:
        parts = parts[1:]
    return ".".join(str(part) for part in parts) or "body"


def pydantic_message(error: dict[str, Any]) -> str:
    """A translated message for the common pydantic error types (pydantic's own otherwise)."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    simple = {
        "missing": gettext("This field is required."),
        "extra_forbidden": gettext("Unknown field."),
        "string_type": gettext("Enter text."),
        "int_type": gettext("Enter a whole number."),
        "int_parsing": gettext("Enter a whole number."),
        "int_from_float": gettext("Enter a whole number."),
        "bool_type": gettext("Enter true or false."),
        "bool_parsing": gettext("Enter true or false."),
        "float_type": gettext("Enter a number."),
        "float_parsing": gettext("Enter a number."),
        "datetime_type": gettext("Enter a date and time such as 2025-03-01T10:00:00Z."),
        "datetime_parsing": gettext("Enter a date and time such as 2025-03-01T10:00:00Z."),
        "datetime_from_date_parsing": gettext(
            "Enter a date and time such as 2025-03-01T10:00:00Z."
        ),
        "dict_type": gettext("Enter a JSON object."),
        "model_type": gettext("Enter a JSON object."),
        "model_attributes_type": gettext("Enter a JSON object."),
        "list_type": gettext("Enter a list."),
        "json_invalid": gettext("The body is not valid JSON."),
        "literal_error": gettext("Choose one of: %(expected)s.")
        % {"expected": ctx.get("expected", "")},
        "enum": gettext("Choose one of: %(expected)s.") % {"expected": ctx.get("expected", "")},
    }
    if kind in simple:
        return simple[kind]
    if kind in ("less_than_equal", "less_than"):
        return gettext("Enter at most %(limit)s.") % {"limit": ctx.get("le", ctx.get("lt"))}
    if kind in ("greater_than_equal", "greater_than"):
        return gettext("Enter at least %(limit)s.") % {"limit": ctx.get("ge", ctx.get("gt"))}
    if kind == "string_too_long":
        return gettext("Use at most %(limit)s characters.") % {"limit": ctx.get("max_length")}
    if kind == "string_too_short":
        return gettext("Use at least %(limit)s characters.") % {"limit": ctx.get("min_length")}
    if kind == "too_long":
        return gettext("Give at most %(limit)s items.") % {"limit": ctx.get("max_length")}
    if kind == "too_short":
        return gettext("Give at least %(limit)s items.") % {"limit": ctx.get("min_length")}
    message = str(error.get("msg", ""))
    # Our own validators raise ValueError with a translated message; pydantic prefixes it.
    return message.removeprefix("Value error, ")


def validation_errors(errors: list[dict[str, Any]]) -> dict[str, str]:
    """Field -> first message, from a list of pydantic/ninja error dicts."""
    fields: dict[str, str] = {}
    for error in errors:
        fields.setdefault(field_name(error.get("loc", ())), pydantic_message(error))
    return fields


def install_error_handlers(api: NinjaAPI) -> None:
    """Make every error of `api` use the standard body."""

    def respond(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponse:
        return api.create_response(request, body, status=status)

    @api.exception_handler(ValidationError)
    def on_validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        body = error_body(gettext("Some fields are not valid."), validation_errors(exc.errors))
        return respond(request, 400, body)

    @api.exception_handler(AuthenticationError)
    def on_authentication(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        body = error_body(
            gettext(
                "Send a valid API key: “Authorization: Bearer ck_…” or “X-Api-Key: ck_…”."
                " Revoked keys no longer work."
            )
        )
        response = respond(request, 401, body)
        response["WWW-Authenticate"] = 'Bearer realm="circolo"'
        return response

    @api.exception_handler(ScopeDenied)
    def on_scope(request: HttpRequest, exc: ScopeDenied) -> HttpResponse:
        body = error_body(
            gettext("This API key lacks the scope “%(scope)s”.") % {"scope": exc.scope},
            {"scope": gettext("Requires %(scope)s.") % {"scope": exc.scope}},
        )
        return respond(request, 403, body)

    @api.exception_handler(ApiError)
    def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = respond(request, exc.status, error_body(exc.detail, exc.errors))
        for name, value in exc.headers.items():
            response[name] = value
        return response

    def on_not_found(request: HttpRequest, exc: object) -> HttpResponse:
        return respond(request, 404, error_body(gettext("Not found.")))

    api.add_exception_handler(Http404, on_not_found)
    api.add_exception_handler(ObjectDoesNotExist, on_not_found)

    @api.exception_handler(RequestDataTooBig)
    def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        body = error_body(gettext("The request body is too large; send smaller batches."))
        return respond(request, 413, body)

    @api.exception_handler(HttpError)
    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return respond(request, exc.status_code, error_body(str(exc)))
