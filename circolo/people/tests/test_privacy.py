"""Member data export and erasure, the request records and the staff privacy pages."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest
from django.apps import apps
from django.test import TestCase
from django.urls import reverse

from circolo.activity.models import Activity, DailyRollup, MemberDailyRollup, MemberScore
from circolo.activity.services import ActivityIn, activity_record_bulk
from circolo.core.models import AuditLog
from circolo.people import privacy
from circolo.people.models import (
    DataRequest,
    Identity,
    IdentityKind,
    Member,
    MemberTag,
    MergeSuggestion,
)
from circolo.people.privacy import (
    ERASED,
    PrivacyError,
    data_request_erase,
    data_request_export,
    data_request_export_read,
    data_request_record,
    member_erase,
    member_export,
    register_eraser,
    register_export_section,
)
from circolo.people.services import IdentityIn, identity_add, member_merge, member_update
from circolo.testing.factories import IdentityFactory, MemberFactory, UserFactory
from circolo.testing.people_factories import MemberTagFactory, MergeSuggestionFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
# Everything that identifies the person in the fixture below: none may survive an erasure.
PERSONAL = (
    "giulia",
    "ferraresi",
    "castelfranco",
    "+393471234567",
    "giuliaf88",
    "espresso cup",
    "g.ferraresi@work.example",
)


@pytest.fixture(autouse=True)
def no_mfa_prompt(settings: Any) -> None:
    """Owners are asked to set up MFA before workspace pages; these tests are about privacy."""
    settings.CIRCOLO_MFA_ENFORCE = False


GIULIA_DETAILS = {"title": "Giulia's photo of the espresso cup", "author": "giuliaf88", "likes": 4}


def record(
    workspace: Any, member: Member, kinds: list[str], *, tag: str, details: Any = None
) -> None:
    """Record activities with personal details through the bulk path and run the handlers."""
    items = [
        ActivityIn(
            member_id=member.pk,
            kind=kind,
            channel="community",
            occurred_at=T0 + dt.timedelta(hours=i),
            source="test",
            source_id=f"{tag}-{i}",
            properties=dict(GIULIA_DETAILS if details is None else details),
        )
        for i, kind in enumerate(kinds)
    ]
    with TestCase.captureOnCommitCallbacks(execute=True):
        activity_record_bulk(workspace=workspace, items=items)


@pytest.fixture
def giulia(workspace: Any, owner: Any) -> Member:
    """A member with every kind of personal data, and a second profile merged into her."""
    member = MemberFactory(
        workspace=workspace,
        display_name="Giulia Ferraresi",
        city="Castelfranco Emilia",
        country="IT",
        languages=["it", "en"],
        consent_email=True,
        consent_profiling=True,
        user=UserFactory(email="login-7@bottega.test"),
    )
    IdentityFactory(member=member, channel="email", value="giulia.ferraresi@example.org")
    identity_add(
        member=member,
        identity=IdentityIn(channel="forum", kind=IdentityKind.HANDLE, value="giuliaf88"),
        actor=owner.user,
    )
    IdentityFactory(
        member=member, channel="whatsapp", kind=IdentityKind.PHONE, value="+393471234567"
    )
    member_update(member=member, actor=owner.user, city="Castelfranco Emilia (MO)")
    MemberTagFactory(member=member, tag="vip")
    record(workspace, member, ["post", "post", "review", "reply"], tag="g")

    twin = MemberFactory(workspace=workspace, display_name="G. Ferraresi", city="Modena")
    IdentityFactory(member=twin, channel="email", value="g.ferraresi@work.example")
    record(workspace, twin, ["post"], tag="twin")
    member_merge(workspace=workspace, survivor=member, merged=twin, actor=owner.user)

    other = MemberFactory(workspace=workspace, display_name="Anna Ferri")
    MergeSuggestionFactory(
        member_a=member,
        member_b=other,
        reasons=[{"code": "same_name_city", "detail": "Giulia Ferraresi, Castelfranco"}],
    )
    member.refresh_from_db()
    return member


@pytest.fixture
def bystander(workspace: Any) -> Member:
    member = MemberFactory(workspace=workspace, display_name="Paolo Neri", city="Bologna")
    IdentityFactory(member=member, channel="email", value="paolo@example.com")
    record(workspace, member, ["post"], tag="p", details={"title": "Paolo's bread"})
    return member


def traces(strings: tuple[str, ...], *, skip: tuple[Any, ...] = ()) -> list[str]:
    """Where in the whole database any of these strings still appears (case-insensitive)."""
    found = []
    for model in apps.get_models():
        if model in skip:
            continue
        for row in model._default_manager.values():
            text = json.dumps(row, default=str, ensure_ascii=False).lower()
            found.extend(f"{model._meta.label} {row.get('id')}: {s}" for s in strings if s in text)
    return found


def totals(workspace: Any) -> dict[str, Any]:
    """The anonymous facts an erasure must keep."""
    return {
        "kinds": Counter(
            Activity.objects.filter(workspace=workspace).values_list("kind", flat=True)
        ),
        "weights": sorted(Activity.objects.filter(workspace=workspace).values_list("weight")),
        "daily": sorted(
            DailyRollup.objects.filter(workspace=workspace).values_list(
                "day", "kind", "channel", "count", "weight_sum"
            )
        ),
        "member_daily": sorted(
            MemberDailyRollup.objects.filter(workspace=workspace).values_list(
                "member_id", "day", "count", "weight_sum"
            )
        ),
        "scores": sorted(
            MemberScore.objects.filter(workspace=workspace).values_list(
                "member_id", "activity_count", "growth"
            )
        ),
        "members": Member.objects.filter(workspace=workspace).count(),
    }


# --------------------------------------------------------------------------- export


class TestExport:
    def test_export_holds_every_piece_of_personal_data(self, giulia, bystander):
        export = member_export(member=giulia)
        text = json.dumps(export, ensure_ascii=False)  # JSON-serialisable as it is
        assert export["format"] == "circolo.member_export"
        assert export["member"]["display_name"] == "Giulia Ferraresi"
        assert export["member"]["city"] == "Castelfranco Emilia (MO)"
        assert export["member"]["languages"] == ["it", "en"]
        assert export["member"]["consent_email"] is True
        assert export["member"]["account_email"] == "login-7@bottega.test"
        assert [p["display_name"] for p in export["merged_profiles"]] == ["G. Ferraresi"]
        values = {(i["kind"], i["value"]) for i in export["identities"]}
        assert values == {
            ("email", "giulia.ferraresi@example.org"),
            ("email", "g.ferraresi@work.example"),
            ("phone", "+393471234567"),
            ("handle", "giuliaf88"),
        }
        assert export["tags"] == ["vip"]
        assert Counter(a["kind"] for a in export["activities"]) == {
            "post": 3,
            "review": 1,
            "reply": 1,
        }
        assert export["activities"][0]["properties"]["author"] == "giuliaf88"
        assert export["score"]["activity_count"] == 5
        assert "paolo" not in text.lower()

    def test_registered_sections_join_the_export(self, giulia, monkeypatch):
        monkeypatch.setattr(privacy, "_EXPORT_SECTIONS", {})

        def loyalty(*, subject):
            return {"members": list(subject.member_ids), "emails": sorted(subject.emails)}

        register_export_section("loyalty", loyalty)
        register_export_section("loyalty", loyalty)  # the same function again: no-op
        export = member_export(member=giulia)
        assert export["loyalty"]["emails"] == [
            "g.ferraresi@work.example",
            "giulia.ferraresi@example.org",
        ]
        assert export["loyalty"]["members"][0] == giulia.pk
        with pytest.raises(ValueError, match="already registered"):
            register_export_section("loyalty", lambda *, subject: None)
        with pytest.raises(ValueError, match="reserved"):
            register_export_section("identities", loyalty)

    def test_merged_member_is_refused_by_name(self, giulia):
        twin = Member.objects.get(merged_into=giulia)
        with pytest.raises(PrivacyError) as error:
            member_export(member=twin)
        assert error.value.field == "member"
        with pytest.raises(PrivacyError):
            data_request_export(member=twin, actor=None)
        assert not DataRequest.objects.exists()

    def test_export_request_is_recorded_done_and_audited(self, giulia, owner):
        request = data_request_export(member=giulia, actor=owner.user)
        request.refresh_from_db()
        assert request.status == DataRequest.Status.DONE
        assert request.source == "staff"
        assert request.requested_by == owner.user
        assert request.completed_at is not None
        assert request.export["member"]["display_name"] == "Giulia Ferraresi"
        assert request.summary == {"activities": 5, "identities": 4}
        assert AuditLog.objects.filter(action="member.export", target_id=str(giulia.pk)).exists()
        assert data_request_export_read(data_request=request, actor=owner.user) == request.export
        assert AuditLog.objects.filter(action="data_request.download").count() == 1

    def test_a_failing_export_is_kept_as_failed(self, giulia, monkeypatch):
        def broken(*, subject):
            raise RuntimeError("section exploded")

        monkeypatch.setattr(privacy, "_EXPORT_SECTIONS", {"broken": broken})
        with pytest.raises(RuntimeError):
            data_request_export(member=giulia, actor=None, source="shopify")
        request = DataRequest.objects.get()
        assert request.status == DataRequest.Status.FAILED
        assert request.export is None
        assert "section exploded" in request.error

    def test_bad_source_and_reference_name_the_field(self, giulia):
        with pytest.raises(PrivacyError) as error:
            data_request_export(member=giulia, actor=None, source="")
        assert error.value.field == "source"
        with pytest.raises(PrivacyError) as error:
            data_request_export(member=giulia, actor=None, external_reference="x" * 201)
        assert error.value.field == "external_reference"
        with pytest.raises(PrivacyError) as error:
            data_request_record(
                workspace=giulia.workspace, kind="delete", source="staff", summary={}
            )
        assert error.value.field == "kind"


# --------------------------------------------------------------------------- erasure


class TestErase:
    def test_no_trace_left_and_anonymous_totals_kept(self, giulia, bystander, owner):
        workspace = giulia.workspace
        data_request_export(member=giulia, actor=owner.user)
        before = totals(workspace)
        assert traces(PERSONAL), "the fixture must hold the personal data first"

        erasure = member_erase(
            member=giulia,
            actor=owner.user,
            reason="Asked by giulia.ferraresi@example.org (Giulia Ferraresi), ticket 88",
        )

        assert traces(PERSONAL) == []
        assert traces(("giulia.ferraresi@example.org",)) == []
        assert totals(workspace) == before
        giulia.refresh_from_db()
        assert giulia.erased_at is not None
        assert (giulia.display_name, giulia.city, giulia.languages) == ("", "", [])
        assert (giulia.consent_email, giulia.consent_profiling, giulia.user) == (False, False, None)
        assert giulia.country == "IT"
        twin = Member.objects.get(merged_into=giulia)
        assert (twin.display_name, twin.city) == ("", "")
        assert twin.erased_at is not None
        assert not Identity.objects.filter(member__in=[giulia, twin]).exists()
        assert not MemberTag.objects.filter(member=giulia).exists()
        assert not MergeSuggestion.objects.filter(member_a=giulia).exists()
        kept = list(Activity.objects.filter(member=giulia).values_list("properties", flat=True))
        assert kept == [{}] * 5
        assert DataRequest.objects.get(kind="export").export is None
        assert erasure.first
        assert erasure.counts["identities"] == 4
        assert erasure.counts["activities"] == 5
        assert erasure.counts["profiles"] == 2

        entry = AuditLog.objects.get(action="member.erase")
        assert entry.actor == owner.user
        assert entry.data["reason"] == f"Asked by {ERASED} ({ERASED}), ticket 88"
        assert entry.data["identities"] == 4
        # Earlier audit entries about her keep their action and shape, not the text.
        update = AuditLog.objects.get(action="member.update", target_id=str(giulia.pk))
        assert update.data == {"changes": {"city": [ERASED, ERASED]}}
        added = AuditLog.objects.get(action="identity.add", target_id=str(giulia.pk))
        assert added.data["channel"] == "forum"
        assert added.data["value"] == ERASED

        # The bystander is untouched.
        bystander.refresh_from_db()
        assert bystander.display_name == "Paolo Neri"
        assert Identity.objects.filter(member=bystander).count() == 1
        assert Activity.objects.get(member=bystander).properties == {"title": "Paolo's bread"}

    def test_erasing_twice_changes_nothing_more(self, giulia, owner):
        first = member_erase(member=giulia, actor=owner.user, reason="GDPR request")
        giulia.refresh_from_db()
        erased_at = giulia.erased_at
        audit_count = AuditLog.objects.count()

        again = member_erase(member=giulia, actor=owner.user, reason="GDPR request")
        giulia.refresh_from_db()
        assert first.first and not again.first
        assert not again.changed
        assert set(again.counts.values()) == {0}
        assert giulia.erased_at == erased_at
        assert AuditLog.objects.count() == audit_count

    def test_data_arriving_after_an_erasure_is_erased_by_a_second_one(self, giulia, owner):
        member_erase(member=giulia, actor=owner.user, reason="GDPR request")
        record(giulia.workspace, giulia, ["post"], tag="late")
        again = member_erase(member=giulia, actor=owner.user, reason="GDPR request")
        assert again.counts["activities"] == 1
        assert AuditLog.objects.filter(action="member.erase").count() == 2
        assert traces(("espresso cup",)) == []

    def test_registered_erasers_run_before_identities_go(self, giulia, monkeypatch):
        seen: list[tuple[str, ...]] = []

        def notes(*, subject):
            seen.append(subject.emails)
            return {"notes": 2}

        monkeypatch.setattr(privacy, "_ERASERS", [])
        register_eraser(notes)
        register_eraser(notes)  # registered once
        erasure = member_erase(member=giulia, actor=None, reason="GDPR request")
        assert seen == [("g.ferraresi@work.example", "giulia.ferraresi@example.org")]
        assert erasure.counts["notes"] == 2

    def test_an_eraser_failing_rolls_everything_back(self, giulia, monkeypatch):
        def broken(*, subject):
            raise RuntimeError("store offline")

        monkeypatch.setattr(privacy, "_ERASERS", [broken])
        with pytest.raises(RuntimeError):
            data_request_erase(member=giulia, actor=None, reason="GDPR request")
        giulia.refresh_from_db()
        assert giulia.display_name == "Giulia Ferraresi"
        assert giulia.erased_at is None
        assert Identity.objects.filter(member=giulia).count() == 4
        assert DataRequest.objects.get().status == DataRequest.Status.FAILED

    @pytest.mark.parametrize("reason", ["", "   ", None, "x" * 201])
    def test_bad_reason_is_refused_by_name(self, giulia, reason):
        with pytest.raises(PrivacyError) as error:
            member_erase(member=giulia, actor=None, reason=reason)
        assert error.value.field == "reason"
        with pytest.raises(PrivacyError):
            data_request_erase(member=giulia, actor=None, reason=reason)
        assert not DataRequest.objects.exists()

    def test_merged_member_cannot_be_erased_on_its_own(self, giulia):
        twin = Member.objects.get(merged_into=giulia)
        with pytest.raises(PrivacyError) as error:
            member_erase(member=twin, actor=None, reason="GDPR request")
        assert error.value.field == "member"

    def test_erase_request_records_the_counts(self, giulia, owner):
        request = data_request_erase(
            member=giulia,
            actor=owner.user,
            reason="GDPR request",
            external_reference="T-88 from giuliaf88",
        )
        request.refresh_from_db()
        assert request.kind == DataRequest.Kind.ERASE
        assert request.status == DataRequest.Status.DONE
        # The reference is kept, without what identified her.
        assert request.external_reference == f"T-88 from {ERASED}"
        assert request.summary["identities"] == 4
        assert request.summary["again"] is False
        assert request.member == giulia


# --------------------------------------------------------------------------- pages


def privacy_url(member: Member, slug: str | None = None) -> str:
    return reverse(
        "people:member_privacy",
        kwargs={"slug": slug or member.workspace.slug, "member_id": member.pk},
    )


def erase_url(member: Member) -> str:
    return reverse(
        "people:member_erase", kwargs={"slug": member.workspace.slug, "member_id": member.pk}
    )


def export_url(member: Member) -> str:
    return reverse(
        "people:member_privacy_export",
        kwargs={"slug": member.workspace.slug, "member_id": member.pk},
    )


def list_url(workspace: Any) -> str:
    return reverse("people:data_request_list", kwargs={"slug": workspace.slug})


class TestPages:
    def test_owner_and_manager_see_the_privacy_page(self, owner, manager, giulia):
        for persona in (owner, manager):
            response = persona.client.get(privacy_url(giulia))
            assert response.status_code == 200
            assert "giulia.ferraresi@example.org" in response.content.decode()
            assert export_url(giulia) in response.content.decode()

    def test_weaker_roles_are_forbidden(self, analyst, moderator, member_user, giulia):
        for persona in (analyst, moderator, member_user):
            assert persona.client.get(privacy_url(giulia)).status_code == 403
            assert persona.client.post(export_url(giulia)).status_code == 403
            assert persona.client.get(erase_url(giulia)).status_code == 403
            response = persona.client.post(erase_url(giulia), {"reason": "x", "confirm": "on"})
            assert response.status_code == 403
            assert persona.client.get(list_url(giulia.workspace)).status_code == 403
        giulia.refresh_from_db()
        assert giulia.erased_at is None
        assert not DataRequest.objects.exists()

    def test_outsider_gets_404_everywhere(self, outsider, owner, giulia):
        request = data_request_export(member=giulia, actor=owner.user)
        download = reverse(
            "people:data_request_download",
            kwargs={"slug": giulia.workspace.slug, "request_id": request.pk},
        )
        assert outsider.client.get(privacy_url(giulia)).status_code == 404
        assert (
            outsider.client.post(erase_url(giulia), {"reason": "x", "confirm": "on"}).status_code
            == 404
        )
        assert outsider.client.get(download).status_code == 404
        assert outsider.client.get(list_url(giulia.workspace)).status_code == 404
        # Nor through the outsider's own workspace address.
        own_slug = outsider.workspace.slug
        assert outsider.client.get(privacy_url(giulia, slug=own_slug)).status_code == 404
        own_download = reverse(
            "people:data_request_download",
            kwargs={"slug": own_slug, "request_id": request.pk},
        )
        assert outsider.client.get(own_download).status_code == 404
        giulia.refresh_from_db()
        assert giulia.erased_at is None

    def test_export_button_records_a_request_and_downloads_json(self, owner, giulia):
        assert owner.client.get(export_url(giulia)).status_code == 405
        response = owner.client.post(export_url(giulia))
        request = DataRequest.objects.get()
        assert response.status_code == 302
        download = owner.client.get(response["Location"])
        assert download.status_code == 200
        assert download["Content-Type"] == "application/json"
        assert "attachment" in download["Content-Disposition"]
        assert download["Cache-Control"] == "no-store"
        data = json.loads(download.content)
        assert data["member"]["display_name"] == "Giulia Ferraresi"
        assert request.member == giulia

    def test_erase_needs_the_confirm_step(self, owner, giulia):
        page = owner.client.get(erase_url(giulia))
        assert page.status_code == 200
        assert "cannot be undone" in page.content.decode()
        response = owner.client.post(erase_url(giulia), {"reason": "GDPR request"})
        assert response.status_code == 400
        assert "Tick the box" in response.content.decode()
        response = owner.client.post(erase_url(giulia), {"confirm": "on"})
        assert response.status_code == 400
        giulia.refresh_from_db()
        assert giulia.erased_at is None

        response = owner.client.post(
            erase_url(giulia),
            {"reason": "GDPR request", "confirm": "on", "external_reference": "T-1"},
        )
        assert response.status_code == 302
        assert response["Location"] == privacy_url(giulia)
        giulia.refresh_from_db()
        assert giulia.erased_at is not None
        page = owner.client.get(privacy_url(giulia))
        assert "was erased on" in page.content.decode()
        assert "giulia" not in page.content.decode().lower()

    def test_merged_member_pages_lead_to_the_survivor(self, owner, giulia):
        twin = Member.objects.get(merged_into=giulia)
        response = owner.client.get(privacy_url(twin))
        assert response.status_code == 302
        assert response["Location"] == privacy_url(giulia)
        response = owner.client.post(erase_url(twin), {"reason": "GDPR", "confirm": "on"})
        assert response["Location"] == privacy_url(giulia)
        twin.refresh_from_db()
        assert twin.erased_at is None

    def test_unknown_member_and_request_are_404(self, owner, workspace):
        missing = reverse(
            "people:member_privacy", kwargs={"slug": workspace.slug, "member_id": 999999}
        )
        assert owner.client.get(missing).status_code == 404
        download = reverse(
            "people:data_request_download", kwargs={"slug": workspace.slug, "request_id": 999999}
        )
        assert owner.client.get(download).status_code == 404

    def test_download_of_an_erased_members_export_is_gone(self, owner, giulia):
        request = data_request_export(member=giulia, actor=owner.user)
        member_erase(member=giulia, actor=owner.user, reason="GDPR request")
        download = reverse(
            "people:data_request_download",
            kwargs={"slug": giulia.workspace.slug, "request_id": request.pk},
        )
        assert owner.client.get(download).status_code == 404

    def test_request_list_shows_status_and_download(
        self, owner, giulia, bystander, django_assert_max_num_queries
    ):
        workspace = giulia.workspace
        export = data_request_export(member=bystander, actor=owner.user)
        data_request_erase(member=giulia, actor=owner.user, reason="GDPR request")
        data_request_record(
            workspace=workspace, kind="export", source="shopify", summary={"nothing_held": True}
        )
        for _n in range(5):
            data_request_export(member=bystander, actor=None, source="shopify")
        with django_assert_max_num_queries(12):
            response = owner.client.get(list_url(workspace))
        html = response.content.decode()
        assert response.status_code == 200
        assert len(response.context["rows"]) == 8
        assert "Nothing was held about this person." in html
        assert "Erased — identities: 4, activities stripped: 5" in html
        assert "Shopify" in html
        download = reverse(
            "people:data_request_download", kwargs={"slug": workspace.slug, "request_id": export.pk}
        )
        assert download in html
        assert "giulia" not in html.lower()
