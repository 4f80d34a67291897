"""Celery application: workers and beat read the same Django settings."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "circolo.settings")

app = Celery("circolo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
