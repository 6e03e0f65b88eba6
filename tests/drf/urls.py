"""A DRF API over formsapp.Document with a plain ModelSerializer."""

from django.urls import include, path
from rest_framework import routers, serializers, viewsets

import mcfields.drf  # noqa: F401 - registers the serializer fields
from tests.forms.formsapp.models import Document


class DocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = ["id", "title", "notes", "scan", "blob"]


class DocumentViewSet(viewsets.ModelViewSet):
    queryset = Document.objects.order_by("pk")
    serializer_class = DocumentSerializer
    authentication_classes: list = []
    permission_classes: list = []


router = routers.DefaultRouter()
router.register("documents", DocumentViewSet)

urlpatterns = [path("api/", include(router.urls))]
