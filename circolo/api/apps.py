from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "circolo.api"
    label = "api"
