"""Circolo: community-led growth for online stores."""

from circolo.celery import app as celery_app

__all__ = ["celery_app"]
