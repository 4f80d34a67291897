from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "circolo.core"
    label = "core"
    verbose_name = "Circolo core"
