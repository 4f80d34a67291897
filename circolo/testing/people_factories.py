"""factory_boy factories for the people app's tags and merge suggestions."""

from __future__ import annotations

import factory

from circolo.people.models import MemberTag, MergeReason, MergeSuggestion
from circolo.testing.factories import MemberFactory


class MemberTagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MemberTag

    member = factory.SubFactory(MemberFactory)
    workspace = factory.LazyAttribute(lambda o: o.member.workspace)
    tag = factory.Sequence(lambda n: f"tag-{n}")


class MergeSuggestionFactory(factory.django.DjangoModelFactory):
    """A pending suggestion; give member_a/member_b of one workspace, member_a.pk < member_b.pk."""

    class Meta:
        model = MergeSuggestion

    member_a = factory.SubFactory(MemberFactory)
    member_b = factory.SubFactory(
        MemberFactory, workspace=factory.SelfAttribute("..member_a.workspace")
    )
    workspace = factory.LazyAttribute(lambda o: o.member_a.workspace)
    score = 0.9
    reasons = factory.LazyFunction(
        lambda: [{"code": MergeReason.SAME_EMAIL.value, "detail": "anna@example.com"}]
    )
