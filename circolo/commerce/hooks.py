"""The public endpoint stores post webhooks to: /hooks/<platform>/<token>/ (no session, no
CSRF: the signature is the authentication)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from circolo.commerce.webhooks import delivery_receive


@csrf_exempt
@require_POST
def webhook_receive(request: HttpRequest, platform: str, token: str) -> JsonResponse:
    received = delivery_receive(
        platform=platform, token=token, headers=dict(request.headers), body=request.body
    )
    return JsonResponse({"result": received.result}, status=received.status)
