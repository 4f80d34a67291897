"""factory_boy factories shared by every app's tests."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from circolo.activity.models import Activity
from circolo.core.models import Role, Workspace, WorkspaceRole
from circolo.people.models import Identity, IdentityKind, Member


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.LazyAttribute(lambda o: o.email)
    password = factory.django.Password("correct horse battery staple")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Store {n}")
    slug = factory.Sequence(lambda n: f"store-{n}")


class WorkspaceRoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkspaceRole

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    workspace = factory.SubFactory(WorkspaceFactory)
    display_name = factory.Sequence(lambda n: f"Member {n}")
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyFunction(timezone.now)


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Identity

    member = factory.SubFactory(MemberFactory)
    workspace = factory.LazyAttribute(lambda o: o.member.workspace)
    channel = "email"
    kind = IdentityKind.EMAIL
    value = factory.Sequence(lambda n: f"person{n}@example.com")
    verified = True
    source = "test"


class ActivityFactory(factory.django.DjangoModelFactory):
    """Creates a row directly (no handlers): for reads. Writes go through activity_record()."""

    class Meta:
        model = Activity

    member = factory.SubFactory(MemberFactory)
    workspace = factory.LazyAttribute(lambda o: o.member.workspace)
    kind = "post"
    channel = "community"
    occurred_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))
    weight = 5
    properties = factory.LazyFunction(dict)
    source = "test"
    source_id = factory.Sequence(lambda n: f"t-{n}")
