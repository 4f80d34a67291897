from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "circolo.activity"
    label = "activity"

    def ready(self) -> None:
        # Registers the built-in handlers (rollups, scores, first/last seen) before any app's.
        from circolo.activity import rollups  # noqa: F401
