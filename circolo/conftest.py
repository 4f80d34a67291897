"""Shared fixtures: named personas (owner, manager, moderator, analyst, member, outsider)."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from circolo.core.models import Role, Workspace
from circolo.testing.factories import UserFactory, WorkspaceFactory, WorkspaceRoleFactory


@dataclass
class Persona:
    user: Any
    workspace: Workspace
    role: str
    client: Client


def _persona(workspace: Workspace, role: str, email: str) -> Persona:
    user = UserFactory(email=email)
    WorkspaceRoleFactory(workspace=workspace, user=user, role=role)
    client = Client()
    client.force_login(user)
    return Persona(user=user, workspace=workspace, role=role, client=client)


@pytest.fixture(autouse=True)
def _tasks_in_process(settings: Any) -> None:
    """Background tasks run in process after commit in tests, whatever REDIS_URL says.

    The PostgreSQL run sets REDIS_URL (cache on Redis); the one test that drives a real
    Celery worker turns this back off for itself.
    """
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CIRCOLO_BACKGROUND_THREAD = False


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings: Any) -> None:
    """Each test sees an empty cache, even on the shared Redis of the PostgreSQL run
    (parallel workers and earlier runs write there too)."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    settings.CACHES = caches


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Real hashers cost ~0.5 s per user; tests check behaviour, not hash strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def workspace(db: Any) -> Workspace:
    return WorkspaceFactory(name="Bottega Verde", slug="bottega")


@pytest.fixture
def other_workspace(db: Any) -> Workspace:
    return WorkspaceFactory(name="Elsewhere Shop", slug="elsewhere")


@pytest.fixture
def owner(workspace: Workspace) -> Persona:
    return _persona(workspace, Role.OWNER, "owner@bottega.test")


@pytest.fixture
def manager(workspace: Workspace) -> Persona:
    return _persona(workspace, Role.MANAGER, "manager@bottega.test")


@pytest.fixture
def moderator(workspace: Workspace) -> Persona:
    return _persona(workspace, Role.MODERATOR, "moderator@bottega.test")


@pytest.fixture
def analyst(workspace: Workspace) -> Persona:
    return _persona(workspace, Role.ANALYST, "analyst@bottega.test")


@pytest.fixture
def member_user(workspace: Workspace) -> Persona:
    return _persona(workspace, Role.MEMBER, "member@bottega.test")


@pytest.fixture
def outsider(other_workspace: Workspace) -> Persona:
    """The owner of another workspace: must see nothing of `workspace`."""
    return _persona(other_workspace, Role.OWNER, "outsider@elsewhere.test")
