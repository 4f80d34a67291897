from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "circolo.activity"
    label = "activity"
