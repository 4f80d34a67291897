"""The community's background work: Celery tasks that take ids and are safe to run twice."""

from __future__ import annotations
