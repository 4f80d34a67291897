"""Row locks on PostgreSQL: a worker busy with one delivery, or with one member, must not
block other workers that only refer to the same store, workspace or member (the foreign-key
checks of their inserts take KEY SHARE locks on those rows). Locking more than needed made
concurrent workers of one workspace deadlock (seen in bench_webhooks.py on PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from circolo.commerce.models import Delivery, Store
from circolo.commerce.webhooks import delivery_locked
from circolo.core.models import Workspace
from circolo.people.models import MemberTag
from circolo.people.services import IdentityIn, member_resolve
from circolo.testing.commerce import make_store

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
    pytest.mark.django_db(transaction=True),
]


def _in_other_connection(work: Callable[[], Any]) -> BaseException | None:
    """Run `work` in its own transaction on another connection, giving up on any lock
    after two seconds; returns the error it raised, if any."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '2s'")
                work()
        except BaseException as error:  # handed back to the test
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return errors[0] if errors else None


def _delivery(store: Store, key: str) -> Delivery:
    return Delivery.objects.create(
        workspace_id=store.workspace_id,
        store=store,
        topic="orders/create",
        dedupe_key=key,
        body="{}",
        received_at=timezone.now(),
    )


def test_a_delivery_being_processed_does_not_lock_its_store_or_workspace() -> None:
    workspace = Workspace.objects.create(name="Locks", slug="locks")
    store = make_store(workspace, platform="shopify", external_id="locks.myshopify.com")
    first = _delivery(store, "a")
    with transaction.atomic():
        assert delivery_locked(first.pk) is not None
        # Another worker stores the next delivery of the same store meanwhile.
        error = _in_other_connection(lambda: _delivery(store, "b"))
    assert error is None, error
    assert Delivery.objects.filter(store=store).count() == 2


def test_resolving_a_known_member_does_not_block_rows_that_refer_to_them() -> None:
    workspace = Workspace.objects.create(name="Locks", slug="locks")
    identity = IdentityIn(channel="shop", kind="email", value="ada@example.com", verified=True)
    member = member_resolve(workspace=workspace, identities=[identity]).member
    with transaction.atomic():
        # Joining the known member locks their row until this transaction ends ...
        assert member_resolve(workspace=workspace, identities=[identity]).member == member
        # ... and another worker still adds a row that refers to the member.
        error = _in_other_connection(
            lambda: MemberTag.objects.create(workspace=workspace, member=member, tag="vip")
        )
    assert error is None, error
    assert MemberTag.objects.filter(member=member).count() == 1
