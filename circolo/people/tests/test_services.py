from __future__ import annotations

import contextlib
import datetime as dt
import threading

import pytest
from django.db import close_old_connections, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circolo.core.models import AuditLog
from circolo.people import services
from circolo.people.models import Identity, Member, MemberTag, MergeReason, MergeSuggestion
from circolo.people.services import (
    IdentityError,
    IdentityIn,
    MemberAttrs,
    MemberError,
    MergeError,
    identity_add,
    member_create,
    member_resolve,
    member_tag_add,
    member_tag_remove,
    member_update,
    merge_suggestion_accept,
    merge_suggestion_reject,
    suggestion_score,
)
from circolo.testing.factories import IdentityFactory, MemberFactory, WorkspaceFactory
from circolo.testing.people_factories import MergeSuggestionFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def email(value: str, channel: str = "shop", verified: bool = False) -> IdentityIn:
    return IdentityIn(channel=channel, kind="email", value=value, verified=verified)


def codes(suggestion: MergeSuggestion) -> set[str]:
    return {reason["code"] for reason in suggestion.reasons}


# --------------------------------------------------------------------------- resolve


def test_no_match_creates_member_with_normalised_identities(workspace) -> None:
    result = member_resolve(
        workspace=workspace,
        identities=[
            email("  Anna.Rossi@Example.com ", verified=True),
            IdentityIn(channel="Instagram", kind="social", value="@Anna_R"),
            IdentityIn(channel="shop", kind="phone", value="333 123 4567"),
        ],
        attrs=MemberAttrs(
            display_name="Anna  Rossi", city="Milano", country="it", languages=("IT",)
        ),
        seen_at=T0,
    )
    member = result.member
    assert result.created and result.suggestions == []
    assert member.workspace == workspace
    assert (member.display_name, member.city, member.country) == ("Anna Rossi", "Milano", "IT")
    assert member.languages == ["it"]
    assert member.first_seen == member.last_seen == T0
    stored = set(member.identities.values_list("channel", "kind", "value", "verified"))
    assert stored == {
        ("shop", "email", "anna.rossi@example.com", True),
        ("instagram", "social", "anna_r", False),
        # The member's country is the region of a phone written without its country code.
        ("shop", "phone", "+393331234567", False),
    }


def test_verified_email_joins_from_any_channel(workspace) -> None:
    member = MemberFactory(
        workspace=workspace, city="", languages=["it"], first_seen=T0, last_seen=T0
    )
    IdentityFactory(member=member, channel="shop", value="anna@example.com", verified=True)

    later = T0 + dt.timedelta(days=3)
    result = member_resolve(
        workspace=workspace,
        identities=[
            email("ANNA@example.com ", channel="community"),
            IdentityIn(channel="forum", kind="handle", value="@annar"),
        ],
        attrs=MemberAttrs(display_name="Someone Else", city="Roma", languages=("en", "it")),
        seen_at=later,
    )
    member.refresh_from_db()
    assert result.member == member and not result.created
    assert member.last_seen == later and member.first_seen == T0
    assert member.languages == ["it", "en"]
    assert member.city == "Roma"  # was empty
    assert member.display_name != "Someone Else"  # kept
    assert set(member.identities.values_list("channel", "value")) == {
        ("shop", "anna@example.com"),
        ("community", "anna@example.com"),
        ("forum", "annar"),
    }
    assert Member.objects.filter(workspace=workspace).count() == 1


def test_earlier_sighting_moves_first_seen_back(workspace) -> None:
    member = MemberFactory(workspace=workspace, first_seen=T0, last_seen=T0)
    IdentityFactory(member=member, value="anna@example.com", verified=True)
    member_resolve(
        workspace=workspace,
        identities=[email("anna@example.com")],
        seen_at=T0 - dt.timedelta(days=9),
    )
    member.refresh_from_db()
    assert member.first_seen == T0 - dt.timedelta(days=9)
    assert member.last_seen == T0


def test_verified_customer_id_joins_only_on_the_same_channel(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    IdentityFactory(member=member, channel="shopify", kind="customer_id", value="42", verified=True)

    same = member_resolve(
        workspace=workspace,
        identities=[IdentityIn(channel="shopify", kind="customer_id", value=" 42 ")],
    )
    other = member_resolve(
        workspace=workspace,
        identities=[IdentityIn(channel="woocommerce", kind="customer_id", value="42")],
    )
    assert same.member == member and not same.created
    assert other.created and other.member != member
    assert other.suggestions == []


def test_same_unverified_row_joins(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    IdentityFactory(member=member, channel="shop", value="anna@example.com", verified=False)
    result = member_resolve(workspace=workspace, identities=[email("Anna@Example.com")])
    assert result.member == member and not result.created
    assert result.suggestions == []


def test_verified_incoming_upgrades_the_same_unverified_row(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    row = IdentityFactory(member=member, channel="shop", value="anna@example.com", verified=False)
    member_resolve(workspace=workspace, identities=[email("anna@example.com", verified=True)])
    row.refresh_from_db()
    assert row.verified


def test_unverified_email_on_another_channel_creates_member_and_suggestion(workspace) -> None:
    existing = MemberFactory(workspace=workspace)
    IdentityFactory(member=existing, channel="newsletter", value="anna@example.com", verified=False)

    result = member_resolve(
        workspace=workspace, identities=[email("anna@example.com", channel="shop")]
    )

    assert result.created and result.member != existing
    [suggestion] = result.suggestions
    assert (suggestion.member_a, suggestion.member_b) == (existing, result.member)
    assert suggestion.member_a.pk < suggestion.member_b.pk
    assert suggestion.status == MergeSuggestion.Status.PENDING
    assert suggestion.score == 0.9
    assert suggestion.reasons == [{"code": "same_email", "detail": "anna@example.com"}]
    assert suggestion.workspace == workspace


def test_same_phone_suggests(workspace) -> None:
    existing = MemberFactory(workspace=workspace)
    IdentityFactory(
        member=existing, channel="sms", kind="phone", value="+393331234567", verified=False
    )
    result = member_resolve(
        workspace=workspace,
        identities=[
            email("new@example.com"),
            IdentityIn(channel="shop", kind="phone", value="+39 333 123 4567"),
        ],
    )
    [suggestion] = result.suggestions
    assert codes(suggestion) == {"same_phone"}
    assert suggestion.score == 0.85


def test_verified_identities_of_two_members_join_the_oldest_and_suggest(workspace) -> None:
    older = MemberFactory(workspace=workspace)
    newer = MemberFactory(workspace=workspace)
    IdentityFactory(member=newer, channel="shop", value="anna@example.com", verified=True)
    IdentityFactory(member=older, channel="sms", kind="phone", value="+393331234567", verified=True)

    result = member_resolve(
        workspace=workspace,
        identities=[email("anna@example.com"), IdentityIn("shop", "phone", "+393331234567")],
    )
    assert result.member == older and not result.created
    [suggestion] = result.suggestions
    assert (suggestion.member_a, suggestion.member_b) == (older, newer)
    assert codes(suggestion) == {MergeReason.SAME_VERIFIED_IDENTITY}
    # The email stays with its verified owner; the new phone row goes to the joined member.
    assert Identity.objects.get(value="anna@example.com").member == newer
    assert Identity.objects.get(channel="shop", kind="phone").member == older


def test_same_name_and_city_suggests(workspace) -> None:
    existing = MemberFactory(workspace=workspace, display_name="José García", city="Sevilla")
    result = member_resolve(
        workspace=workspace,
        identities=[email("jg@example.es")],
        attrs=MemberAttrs(display_name="jose  GARCIA", city="SEVILLA"),
    )
    [suggestion] = result.suggestions
    assert suggestion.member_a == existing
    assert suggestion.reasons == [{"code": "same_name_city", "detail": "José García, Sevilla"}]
    assert suggestion.score == 0.6


def test_same_name_in_another_city_does_not_suggest(workspace) -> None:
    MemberFactory(workspace=workspace, display_name="Li Wei", city="Beijing")
    result = member_resolve(
        workspace=workspace,
        identities=[email("li@example.cn")],
        attrs=MemberAttrs(display_name="Li Wei", city="Shanghai"),
    )
    assert result.suggestions == []


def test_same_name_and_email_user_on_another_domain_suggests(workspace) -> None:
    existing = MemberFactory(workspace=workspace, display_name="Li Wei", city="")
    IdentityFactory(member=existing, value="liwei88@example.cn")
    result = member_resolve(
        workspace=workspace,
        identities=[email("LiWei88@mail.example.com")],
        attrs=MemberAttrs(display_name="Li Wei"),
    )
    [suggestion] = result.suggestions
    assert codes(suggestion) == {"same_name_email_local"}
    assert suggestion.score == 0.5


def test_several_reasons_combine(workspace) -> None:
    existing = MemberFactory(workspace=workspace, display_name="Anna Rossi", city="Milano")
    IdentityFactory(member=existing, channel="newsletter", value="anna@example.com", verified=False)
    result = member_resolve(
        workspace=workspace,
        identities=[email("anna@example.com")],
        attrs=MemberAttrs(display_name="Anna Rossi", city="Milano"),
    )
    [suggestion] = result.suggestions
    assert codes(suggestion) == {"same_email", "same_name_city"}
    assert suggestion.score == round(1 - 0.1 * 0.4, 2)
    assert suggestion_score(suggestion.reasons) == suggestion.score


def test_new_reasons_strengthen_a_pending_suggestion(workspace) -> None:
    existing = MemberFactory(workspace=workspace, display_name="Anna Rossi", city="Milano")
    IdentityFactory(member=existing, channel="newsletter", value="anna@example.com", verified=False)
    first = member_resolve(
        workspace=workspace,
        identities=[IdentityIn("shop", "customer_id", "c-1")],
        attrs=MemberAttrs(display_name="Anna Rossi", city="Milano"),
    )
    [suggestion] = first.suggestions
    assert suggestion.score == 0.6
    again = member_resolve(
        workspace=workspace,
        identities=[IdentityIn("shop", "customer_id", "c-1"), email("anna@example.com")],
    )
    assert again.member == first.member
    [same] = again.suggestions
    assert same.pk == suggestion.pk
    assert codes(same) == {"same_email", "same_name_city"}
    assert same.score == 0.96
    assert MergeSuggestion.objects.count() == 1


def test_rejected_pair_is_not_suggested_again(workspace, owner) -> None:
    existing = MemberFactory(workspace=workspace)
    IdentityFactory(member=existing, channel="newsletter", value="anna@example.com", verified=False)
    result = member_resolve(workspace=workspace, identities=[email("anna@example.com")])
    [suggestion] = result.suggestions
    merge_suggestion_reject(suggestion=suggestion, actor=owner.user)

    IdentityFactory(
        member=result.member, channel="sms", kind="phone", value="+393331234567", verified=False
    )
    again = member_resolve(
        workspace=workspace,
        identities=[email("anna@example.com"), IdentityIn("web", "phone", "+393331234567")],
    )
    assert again.suggestions == []
    suggestion.refresh_from_db()
    assert suggestion.status == MergeSuggestion.Status.REJECTED
    assert len(suggestion.reasons) == 1


def test_no_suggestions_with_merged_members(workspace) -> None:
    survivor = MemberFactory(workspace=workspace, display_name="Anna Rossi", city="Milano")
    MemberFactory(
        workspace=workspace, display_name="Anna Rossi", city="Milano", merged_into=survivor
    )
    result = member_resolve(
        workspace=workspace,
        identities=[email("anna@example.com")],
        attrs=MemberAttrs(display_name="Anna Rossi", city="Milano"),
    )
    assert [s.member_a for s in result.suggestions] == [survivor]


def test_identity_of_a_merged_member_resolves_to_the_survivor(workspace) -> None:
    survivor = MemberFactory(workspace=workspace)
    merged = MemberFactory(workspace=workspace, merged_into=survivor)
    IdentityFactory(member=merged, value="anna@example.com", verified=True)
    result = member_resolve(workspace=workspace, identities=[email("anna@example.com")])
    assert result.member == survivor and not result.created


def test_resolution_stays_in_its_workspace(workspace, other_workspace) -> None:
    elsewhere = MemberFactory(workspace=other_workspace, display_name="Anna Rossi", city="Milano")
    IdentityFactory(member=elsewhere, value="anna@example.com", verified=True)
    result = member_resolve(
        workspace=workspace,
        identities=[email("anna@example.com")],
        attrs=MemberAttrs(display_name="Anna Rossi", city="Milano"),
    )
    assert result.created and result.member.workspace == workspace
    assert result.suggestions == []


def test_repeated_identity_in_one_call_is_stored_once(workspace) -> None:
    result = member_resolve(
        workspace=workspace,
        identities=[email("a@example.com"), email(" A@example.com", verified=True)],
    )
    [row] = result.member.identities.all()
    assert row.verified


@pytest.mark.parametrize(
    ("identities", "field", "index"),
    [
        ([], "identities", None),
        ([email("a@example.com"), email("not an email")], "email", 1),
        ([IdentityIn("", "email", "a@example.com")], "channel", 0),
        ([IdentityIn("shop", "fax", "123")], "kind", 0),
        ([IdentityIn("shop", "phone", "333 1234567")], "phone", 0),
        ([IdentityIn("x" * 41, "email", "a@example.com")], "channel", 0),
    ],
)
def test_bad_identities_are_refused_and_nothing_is_written(
    workspace, identities, field, index
) -> None:
    with pytest.raises(IdentityError) as caught:
        member_resolve(workspace=workspace, identities=identities)
    assert caught.value.field == field
    assert caught.value.index == index
    assert not Member.objects.exists()


def test_bad_attrs_and_times_are_refused(workspace) -> None:
    with pytest.raises(MemberError) as caught:
        member_resolve(
            workspace=workspace,
            identities=[email("a@example.com")],
            attrs=MemberAttrs(country="Italy"),
        )
    assert caught.value.field == "country"
    with pytest.raises(MemberError) as caught:
        member_resolve(
            workspace=workspace,
            identities=[email("a@example.com")],
            seen_at=dt.datetime(2025, 1, 1),
        )
    assert caught.value.field == "seen_at"
    assert not Member.objects.exists()


def test_identity_taken_between_lookup_and_insert_is_retried(workspace, monkeypatch) -> None:
    """Another process stores the identity after our lookup: our insert fails, we resolve again."""
    existing = MemberFactory(workspace=workspace)
    IdentityFactory(member=existing, channel="shop", value="anna@example.com", verified=False)
    real = services._matching_identities
    calls = []

    def late_lookup(workspace, clean):
        calls.append(1)
        return [] if len(calls) == 1 else real(workspace, clean)

    monkeypatch.setattr(services, "_matching_identities", late_lookup)
    result = member_resolve(workspace=workspace, identities=[email("anna@example.com")])

    assert len(calls) == 2
    assert result.member == existing and not result.created
    # The member created by the failed attempt was rolled back with it.
    assert Member.objects.filter(workspace=workspace).count() == 1


@given(
    local=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyz0123456789._", min_size=1, max_size=12
    ).filter(lambda s: s[0] != "." and s[-1] != "." and ".." not in s),
    variants=st.lists(
        st.tuples(
            st.lists(st.booleans(), min_size=30, max_size=30),
            st.sampled_from(["", " ", "\t", "  \n"]),
        ),
        min_size=2,
        max_size=5,
    ),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_case_and_whitespace_variants_of_an_email_resolve_to_one_member(
    workspace, local, variants
) -> None:
    address = f"{local}@Example.com"
    with transaction.atomic():
        members = set()
        for flips, pad in variants:
            variant = "".join(
                c.upper() if flip else c.lower() for c, flip in zip(address, flips, strict=False)
            )
            variant += address[len(flips) :]
            result = member_resolve(workspace=workspace, identities=[email(pad + variant + pad)])
            members.add(result.member.pk)
        assert len(members) == 1
        assert Identity.objects.filter(workspace=workspace, value=address.lower()).count() == 1
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs concurrent writers (PostgreSQL)"
)
def test_concurrent_resolutions_of_a_new_email_make_one_member(monkeypatch) -> None:
    workspace = WorkspaceFactory()
    real = services._matching_identities
    barrier = threading.Barrier(2, timeout=10)

    lookups: list[int] = []

    def lookup_then_wait(workspace, clean):
        rows = real(workspace, clean)
        lookups.append(len(rows))
        if not rows:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return rows

    monkeypatch.setattr(services, "_matching_identities", lookup_then_wait)
    results: list[int] = []
    errors: list[BaseException] = []

    def resolve() -> None:
        try:
            result = member_resolve(workspace=workspace, identities=[email("race@example.com")])
            results.append(result.member.pk)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=resolve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Both looked before either stored the email; the loser of the insert looked again.
    assert lookups == [0, 0, 1]
    assert len(set(results)) == 1
    assert Member.objects.filter(workspace=workspace).count() == 1
    assert Identity.objects.filter(workspace=workspace).count() == 1


# --------------------------------------------------------------------------- member edits


def test_member_create_cleans_and_audits(workspace, owner) -> None:
    member = member_create(
        workspace=workspace,
        display_name="  Li   Wei ",
        country="cn",
        languages=["ZH-hans"],
        actor=owner.user,
    )
    assert (member.display_name, member.country, member.languages) == ("Li Wei", "CN", ["zh-hans"])
    assert member.name_key == "li wei"
    assert member.first_seen is not None and member.first_seen == member.last_seen
    assert AuditLog.objects.filter(
        workspace=workspace, action="member.create", target_id=str(member.pk)
    ).exists()


def test_member_update_changes_fields_and_audits(workspace, manager) -> None:
    member = MemberFactory(workspace=workspace, display_name="Anna", city="Milano")
    member_update(
        member=member,
        actor=manager.user,
        display_name="Anna  Rossi",
        city="Milano",
        country="it",
        languages=["it", "EN"],
        consent_email=True,
    )
    member.refresh_from_db()
    assert (member.display_name, member.name_key, member.country) == (
        "Anna Rossi",
        "anna rossi",
        "IT",
    )
    assert member.languages == ["it", "en"] and member.consent_email
    entry = AuditLog.objects.get(workspace=workspace, action="member.update")
    assert entry.actor == manager.user
    assert entry.target_id == str(member.pk)
    assert set(entry.data["changes"]) == {"display_name", "country", "languages", "consent_email"}
    assert entry.data["changes"]["display_name"] == ["Anna", "Anna Rossi"]


def test_member_update_without_change_writes_nothing(workspace, manager) -> None:
    member = MemberFactory(workspace=workspace, display_name="Anna")
    member_update(member=member, actor=manager.user, display_name=" Anna ")
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"country": "Italia"}, "country"),
        ({"display_name": "x" * 201}, "display_name"),
        ({"languages": ["it", 3]}, "languages"),
        ({"consent_email": "yes"}, "consent_email"),
        ({"workspace": 7}, "workspace"),
        ({"merged_into": None}, "merged_into"),
    ],
)
def test_member_update_refuses_bad_fields(workspace, manager, fields, field) -> None:
    member = MemberFactory(workspace=workspace, display_name="Anna")
    with pytest.raises(MemberError) as caught:
        member_update(member=member, actor=manager.user, **fields)
    assert caught.value.field == field
    member.refresh_from_db()
    assert member.display_name == "Anna"
    assert not AuditLog.objects.exists()


def test_tags_are_normalised_added_once_and_removed(workspace, moderator) -> None:
    member = MemberFactory(workspace=workspace)
    first = member_tag_add(member=member, tag="  VIP   Buyer ", actor=moderator.user)
    again = member_tag_add(member=member, tag="vip buyer", actor=moderator.user)
    assert first.pk == again.pk and first.tag == "vip buyer" and first.workspace == workspace
    assert AuditLog.objects.filter(action="member.tag_add").count() == 1

    assert member_tag_remove(member=member, tag="VIP BUYER", actor=moderator.user)
    assert not member_tag_remove(member=member, tag="vip buyer", actor=moderator.user)
    assert not MemberTag.objects.exists()
    assert AuditLog.objects.filter(action="member.tag_remove").count() == 1
    with pytest.raises(MemberError):
        member_tag_add(member=member, tag="x" * 65, actor=moderator.user)


def test_identity_add_normalises_audits_and_suggests(workspace, moderator) -> None:
    other = MemberFactory(workspace=workspace)
    IdentityFactory(member=other, channel="newsletter", value="anna@example.com", verified=False)
    member = MemberFactory(workspace=workspace)

    row = identity_add(
        member=member,
        identity=IdentityIn("shop", "email", " Anna@Example.com"),
        actor=moderator.user,
    )
    assert (row.member, row.value, row.workspace) == (member, "anna@example.com", workspace)
    assert AuditLog.objects.filter(action="identity.add", target_id=str(member.pk)).exists()
    suggestion = MergeSuggestion.objects.get()
    assert (suggestion.member_a, suggestion.member_b) == (other, member)
    assert codes(suggestion) == {"same_email"}

    # Adding it again is a no-op; adding another member's identity is refused.
    assert (
        identity_add(
            member=member, identity=IdentityIn("shop", "email", "anna@example.com"), actor=None
        ).pk
        == row.pk
    )
    with pytest.raises(IdentityError) as caught:
        identity_add(
            member=member,
            identity=IdentityIn("newsletter", "email", "anna@example.com"),
            actor=None,
        )
    assert caught.value.field == "value"


def test_identity_add_refuses_merged_member(workspace) -> None:
    survivor = MemberFactory(workspace=workspace)
    merged = MemberFactory(workspace=workspace, merged_into=survivor)
    with pytest.raises(MemberError):
        identity_add(member=merged, identity=email("x@example.com"), actor=None)


# --------------------------------------------------------------------------- suggestions


def test_accepting_a_suggestion_merges_b_into_a(workspace, moderator) -> None:
    suggestion = MergeSuggestionFactory(member_a__workspace=workspace)
    record = merge_suggestion_accept(suggestion=suggestion, actor=moderator.user)
    suggestion.refresh_from_db()
    assert suggestion.status == MergeSuggestion.Status.ACCEPTED
    assert suggestion.decided_by == moderator.user and suggestion.decided_at is not None
    assert (record.survivor, record.merged, record.suggestion) == (
        suggestion.member_a,
        suggestion.member_b,
        suggestion,
    )
    assert Member.objects.get(pk=suggestion.member_b.pk).merged_into == suggestion.member_a
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"member.merge", "merge_suggestion.accept"} <= actions
    with pytest.raises(MergeError):
        merge_suggestion_accept(suggestion=suggestion, actor=moderator.user)


def test_rejecting_a_suggestion_is_recorded_once(workspace, moderator) -> None:
    suggestion = MergeSuggestionFactory(member_a__workspace=workspace)
    merge_suggestion_reject(suggestion=suggestion, actor=moderator.user)
    assert suggestion.status == MergeSuggestion.Status.REJECTED
    assert suggestion.decided_by == moderator.user
    assert AuditLog.objects.filter(
        action="merge_suggestion.reject", target_id=str(suggestion.pk)
    ).exists()
    with pytest.raises(MergeError):
        merge_suggestion_reject(suggestion=suggestion, actor=moderator.user)
    with pytest.raises(MergeError):
        merge_suggestion_accept(suggestion=suggestion, actor=moderator.user)
    assert not Member.objects.filter(merged_into__isnull=False).exists()
