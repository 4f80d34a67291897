"""Idempotency-Key on writes: replays, mismatches, in-progress, release after errors, purge."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from circolo.activity.models import Activity
from circolo.api.tests.conftest import ApiClient
from circolo.core.idempotency import (
    REPLAYED_HEADER,
    idempotency_purge,
    request_fingerprint,
)
from circolo.core.models import IdempotencyRecord
from circolo.people.models import Member
from circolo.testing.factories import MemberFactory


def _member_body(email: str = "ida@example.com") -> dict[str, Any]:
    return {"identities": [{"channel": "shop", "kind": "email", "value": email}]}


def _activity(member_id: int, source_id: str = "x-1") -> dict[str, Any]:
    return {
        "member_id": member_id,
        "kind": "post",
        "channel": "forum",
        "occurred_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
        "source": "forum",
        "source_id": source_id,
    }


def key_header(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def test_replay_returns_identical_response(api: ApiClient, workspace: Any) -> None:
    first = api.post("/members", _member_body(), key_header("create-ida"))
    assert first.status_code == 201
    assert REPLAYED_HEADER not in first
    MemberFactory(workspace=workspace)  # the world changes; the replay does not
    again = api.post("/members", _member_body(), key_header("create-ida"))
    assert again.status_code == 201
    assert again.content == first.content
    assert again[REPLAYED_HEADER] == "true"
    assert Member.objects.filter(workspace=workspace).count() == 2


def test_replay_ignores_json_formatting(api: ApiClient, workspace: Any) -> None:
    first = api.post(
        "/members",
        '{"identities": [{"channel": "shop", "kind": "email", "value": "f@example.com"}]}',
        key_header("fmt"),
    )
    again = api.post(
        "/members",
        '{"identities":[{"value":"f@example.com","kind":"email","channel":"shop"}]}',
        key_header("fmt"),
    )
    assert again.content == first.content and again[REPLAYED_HEADER] == "true"


def test_same_key_different_body_is_422(api: ApiClient, workspace: Any) -> None:
    api.post("/members", _member_body("one@example.com"), key_header("k1"))
    response = api.post("/members", _member_body("two@example.com"), key_header("k1"))
    assert response.status_code == 422
    data = response.json()
    assert data["detail"] and "Idempotency-Key" in data["errors"]
    assert not Member.objects.filter(identities__value="two@example.com").exists()


def test_same_key_different_path_is_422(api: ApiClient, workspace: Any) -> None:
    member = MemberFactory(workspace=workspace)
    api.post("/activities", _activity(member.pk), key_header("shared"))
    response = api.post(
        "/activities/batch", {"items": [_activity(member.pk)]}, key_header("shared")
    )
    assert response.status_code == 422


def test_activity_and_batch_replays(api: ApiClient, workspace: Any) -> None:
    member = MemberFactory(workspace=workspace)
    body = _activity(member.pk)
    one = api.post("/activities", body, key_header("a1"))
    assert one.status_code == 201 and one.json()["status"] == "created"
    replay = api.post("/activities", body, key_header("a1"))
    # Without the key a repeat answers "duplicate"; with it, the first answer comes back.
    assert replay.status_code == 201 and replay.json()["status"] == "created"
    assert replay[REPLAYED_HEADER] == "true"

    batch = {"items": [_activity(member.pk, "b1"), _activity(member.pk, "b2")]}
    first = api.post("/activities/batch", batch, key_header("b"))
    again = api.post("/activities/batch", batch, key_header("b"))
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert Activity.objects.count() == 3


def test_patch_replay(api: ApiClient, workspace: Any) -> None:
    member = MemberFactory(workspace=workspace, city="Napoli")
    first = api.patch(f"/members/{member.pk}", {"city": "Bari"}, key_header("p"))
    Member.objects.filter(pk=member.pk).update(city="Lecce")
    again = api.patch(f"/members/{member.pk}", {"city": "Bari"}, key_header("p"))
    assert again.content == first.content and again[REPLAYED_HEADER] == "true"
    member.refresh_from_db()
    assert member.city == "Lecce"


def test_error_releases_the_key(api: ApiClient, workspace: Any) -> None:
    bad = api.post("/members", _member_body("nope"), key_header("retry"))
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.filter(key="retry").exists()
    good = api.post("/members", _member_body("fixed@example.com"), key_header("retry"))
    assert good.status_code == 201
    assert IdempotencyRecord.objects.get(key="retry").status_code == 201


def test_key_too_long_or_blank(api: ApiClient, workspace: Any) -> None:
    for value in ("k" * 256, "   "):
        response = api.post("/members", _member_body(), key_header(value))
        assert response.status_code == 400
        assert "Idempotency-Key" in response.json()["errors"]
    assert not Member.objects.filter(workspace=workspace).exists()
    assert api.post("/members", _member_body(), key_header("k" * 255)).status_code == 201


def test_in_progress_is_409(api: ApiClient, workspace: Any) -> None:
    body = _member_body()
    path = "/api/v1/members"
    IdempotencyRecord.objects.create(
        workspace=workspace,
        key="busy",
        method="POST",
        path=path,
        request_hash=request_fingerprint(method="POST", path=path, body=_json(body)),
    )
    response = api.post("/members", body, key_header("busy"))
    assert response.status_code == 409
    assert "in progress" in response.json()["detail"]
    assert not Member.objects.filter(workspace=workspace).exists()


def test_abandoned_claim_is_taken_over(api: ApiClient, workspace: Any) -> None:
    body = _member_body()
    path = "/api/v1/members"
    record = IdempotencyRecord.objects.create(
        workspace=workspace,
        key="crashed",
        method="POST",
        path=path,
        request_hash=request_fingerprint(method="POST", path=path, body=_json(body)),
    )
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=10)
    )
    response = api.post("/members", body, key_header("crashed"))
    assert response.status_code == 201
    assert IdempotencyRecord.objects.get(pk=record.pk).status_code == 201


def test_expired_key_runs_again(api: ApiClient, workspace: Any) -> None:
    first = api.post("/members", _member_body("old@example.com"), key_header("day-old"))
    IdempotencyRecord.objects.filter(key="day-old").update(
        created_at=timezone.now() - dt.timedelta(hours=25)
    )
    response = api.post("/members", _member_body("new@example.com"), key_header("day-old"))
    assert first.status_code == response.status_code == 201
    assert REPLAYED_HEADER not in response


def test_keys_are_per_workspace(
    api: ApiClient, outsider_api: ApiClient, workspace: Any, other_workspace: Any
) -> None:
    ours = api.post("/members", _member_body(), key_header("same"))
    theirs = outsider_api.post("/members", _member_body(), key_header("same"))
    assert ours.status_code == theirs.status_code == 201
    assert REPLAYED_HEADER not in theirs
    assert ours.json()["member"]["id"] != theirs.json()["member"]["id"]
    assert Member.objects.filter(workspace=other_workspace).count() == 1


def test_reads_ignore_the_header(api: ApiClient) -> None:
    response = api.get("/kinds", headers=key_header("x"))
    assert response.status_code == 200
    assert not IdempotencyRecord.objects.exists()


def test_auth_comes_first(workspace: Any) -> None:
    response = ApiClient(None).post("/members", _member_body(), key_header("anon"))
    assert response.status_code == 401
    assert not IdempotencyRecord.objects.exists()


def test_purge(api: ApiClient, workspace: Any) -> None:
    api.post("/members", _member_body("a@example.com"), key_header("old"))
    api.post("/members", _member_body("b@example.com"), key_header("new"))
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - dt.timedelta(hours=30)
    )
    assert idempotency_purge(older_than=dt.timedelta(hours=24)) == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert idempotency_purge() == 0


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (b'{"x": 1, "y": [1, 2]}', b'{"y":[1,2],"x":1}', True),
        (b'{"x": 1}', b'{"x": 2}', False),
        (b"not json", b"not json", True),
        (b"not json", b"not json ", False),
    ],
)
def test_fingerprint(a: bytes, b: bytes, same: bool) -> None:
    fa = request_fingerprint(method="POST", path="/p", body=a)
    fb = request_fingerprint(method="POST", path="/p", body=b)
    assert (fa == fb) is same
    assert fa != request_fingerprint(method="PUT", path="/p", body=a)
    assert fa != request_fingerprint(method="POST", path="/q", body=a)


def _json(body: Any) -> bytes:
    import json

    return json.dumps(body).encode()


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_gets_409_then_replay(
    key: Any, workspace: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the first request holds the key, a second one is told so (409), not run twice."""
    import threading

    from django.db import connection

    from circolo.api import members as members_api

    entered, release = threading.Event(), threading.Event()
    real = members_api.people.member_resolve

    def slow_resolve(**kwargs: Any) -> Any:
        entered.set()
        assert release.wait(timeout=30)
        return real(**kwargs)

    monkeypatch.setattr(members_api.people, "member_resolve", slow_resolve)
    body = _member_body("racer@example.com")
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            outcome["first"] = ApiClient(key).post("/members", body, key_header("race"))
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert entered.wait(timeout=30)
        second = ApiClient(key).post("/members", body, key_header("race"))
        assert second.status_code == 409
    finally:
        release.set()
        thread.join(timeout=60)
    assert outcome["first"].status_code == 201
    third = ApiClient(key).post("/members", body, key_header("race"))
    assert third.status_code == 201 and third[REPLAYED_HEADER] == "true"
    assert third.content == outcome["first"].content
    assert Member.objects.filter(workspace=workspace).count() == 1


def test_body_too_large_is_413(api: ApiClient, settings: Any, workspace: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    member = MemberFactory(workspace=workspace)
    items = [_activity(member.pk, f"s{i}") for i in range(40)]
    response = api.post("/activities/batch", {"items": items}, key_header("big"))
    assert response.status_code == 413
    assert set(response.json()) == {"detail", "errors"}
    assert not IdempotencyRecord.objects.exists()
