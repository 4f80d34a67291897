from django.urls import path

from circolo.commerce.hooks import webhook_receive

urlpatterns = [
    path("<slug:platform>/<str:token>/", webhook_receive, name="webhook-receive"),
]
