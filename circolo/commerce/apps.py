from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "circolo.commerce"
    label = "commerce"

    def ready(self) -> None:
        # Orders follow their customer's identity through member merges and undos, and
        # commerce data joins member exports and erasures. Celery workers find tasks.py
        # modules on their own; import_tasks is registered here.
        from circolo.commerce import import_tasks, privacy, receivers  # noqa: F401
