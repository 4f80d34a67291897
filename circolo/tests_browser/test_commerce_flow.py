# ruff: noqa: E501 (the CSV rows are data, kept one per line)
"""Commerce acceptance item 5: a manager connects a store, imports a CSV of orders with some
bad rows, reads the report, and sees the orders on a member profile, in headless Chromium
against the live test server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from circolo.commerce.models import ImportRowError, Order, Store
from circolo.core.models import Role, Workspace
from circolo.people.models import Identity, Member
from circolo.testing.factories import UserFactory, WorkspaceRoleFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ORDERS_CSV = """Id,Name,Created at,Financial Status,Currency,Customer Id,Email,Billing First Name,Billing Last Name,Total,Lineitem sku,Lineitem name,Lineitem quantity,Lineitem price
5001,#5001,2026-03-01T10:00:00Z,paid,EUR,C-77,giulia.rossi@example.com,Giulia,Rossi,59.80,MOKA-3,Moka pot,2,29.90
5002,#5002,2026-03-05T09:30:00Z,paid,EUR,C-77,giulia.rossi@example.com,Giulia,Rossi,12.00,TEA-1,Green tea,1,12.00
5003,#5003,not a date,paid,EUR,C-78,marco@example.com,Marco,Bianchi,10.00,TEA-1,Green tea,1,10.00
5004,#5004,2026-03-07T09:30:00Z,paid,EURO,C-79,ana@example.com,Ana,Lopez,10.00,TEA-1,Green tea,1,10.00
5005,#5005,2026-03-08T09:30:00Z,paid,EUR,C-80,li@example.com,Li,Wei,20.00,TEA-1,Green tea,-1,20.00
"""


@pytest.fixture
def logged_in(page: Any, live_server: Any, settings: Any) -> tuple[Any, Workspace]:
    """A manager's session in the browser (signing in itself is the foundation's test)."""
    settings.CIRCOLO_MFA_ENFORCE = False
    workspace = Workspace.objects.create(name="Bottega Aurora", slug="aurora", currency="EUR")
    user: Any = UserFactory(email="manager@aurora.test")
    WorkspaceRoleFactory(workspace=workspace, user=user, role=Role.MANAGER)
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    return page, workspace


def test_connect_import_with_bad_rows_and_see_orders_on_the_profile(
    logged_in: tuple[Any, Workspace], live_server: Any, tmp_path: Path
) -> None:
    page, workspace = logged_in
    base = f"{live_server.url}/w/{workspace.slug}"

    # Connect a store: the empty list offers it; a file-import store needs a name.
    page.goto(f"{base}/stores/")
    page.get_by_role("link", name="Connect a store").first.click()
    page.locator("a[href$='/stores/connect/file/']").click()
    page.get_by_label("Name").fill("Aurora shop")
    page.get_by_role("button").filter(has_text="Save").first.click()
    store = Store.objects.get(workspace=workspace)
    assert store.platform == "file"

    # Upload the file; the mapping is suggested from the column names.
    csv_path = tmp_path / "orders.csv"
    csv_path.write_text(ORDERS_CSV, encoding="utf-8")
    page.goto(f"{base}/stores/{store.pk}/imports/")
    page.get_by_label("The file holds").select_option("orders")
    page.locator("input[type=file]").set_input_files(str(csv_path))
    page.get_by_role("button", name="Upload and map columns").click()
    page.get_by_role("button", name="Save and run the dry run").click()

    # The dry run's report: every bad row with its line, column and reason.
    page.wait_for_selector("[data-stat=bad]")
    assert page.locator("[data-stat=bad]").inner_text().strip() == "3"
    problems = page.locator("#problems").inner_text()
    for line in ("4", "5", "6"):
        assert line in problems
    assert "Created at" in problems and "Currency" in problems and "Lineitem quantity" in problems
    assert not Order.objects.exists()  # a dry run writes nothing

    # Import the good rows only.
    page.locator("input[name=skip_bad_rows]").check()
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_selector("text=Finished")
    assert "bad rows skipped" in page.locator("body").inner_text()
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["5001", "5002"]
    assert ImportRowError.objects.filter(dry_run=False).count() == 3

    # The orders on the member's profile (the panel loads with htmx).
    member = Member.objects.get(
        pk=Identity.objects.get(
            workspace=workspace, kind="customer_id", value__iexact="c-77"
        ).member_id
    )
    page.goto(f"{base}/members/{member.pk}/")
    # "#5001" also shows in the activity timeline; wait for the panel itself.
    page.wait_for_selector("#orders-panel #orders-table")
    panel = page.locator("#orders-panel").inner_text()
    assert "#5001" in panel and "#5002" in panel
    spend = page.locator("#orders-panel [data-stat=spend]").inner_text()
    assert "71.80" in spend or "71,80" in spend  # net spend of both orders
