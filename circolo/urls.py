from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("circolo.api.urls")),
    path("hooks/", include("circolo.commerce.hook_urls")),
    path("c/<slug:slug>/rewards/", include("circolo.loyalty.urls")),
    path("c/<slug:slug>/", include("circolo.community.urls")),
    path("", include("circolo.core.urls")),
    path("w/<slug:slug>/", include("circolo.people.urls")),
    path("w/<slug:slug>/", include("circolo.insights.urls")),
    path("w/<slug:slug>/", include("circolo.commerce.urls")),
    path("w/<slug:slug>/", include("circolo.community.staff_urls")),
    path("w/<slug:slug>/", include("circolo.loyalty.staff_urls")),
]
if settings.DEBUG:
    urlpatterns.extend(static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT))
