"""A DRF API over typesapp's typed models with plain ModelSerializers."""

from django.urls import include, path
from rest_framework import routers, serializers, viewsets

import mcfields.drf  # noqa: F401 - registers the serializer fields
from tests.typed.typesapp.models import Generic, PlainTyped, Required, Typed


class TypedSerializer(serializers.ModelSerializer):
    class Meta:
        model = Typed
        fields = "__all__"


class PlainTypedSerializer(serializers.ModelSerializer):
    class Meta:
        model = PlainTyped
        fields = "__all__"


class RequiredSerializer(serializers.ModelSerializer):
    class Meta:
        model = Required
        fields = "__all__"


class GenericSerializer(serializers.ModelSerializer):
    class Meta:
        model = Generic
        fields = "__all__"
        extra_kwargs = {"slug": {"help_text": "from extra_kwargs"}}


def viewset(model: type, serializer: type) -> type:
    return type(f"{model.__name__}ViewSet", (viewsets.ModelViewSet,), {
        "queryset": model.objects.order_by("pk"),
        "serializer_class": serializer,
        "authentication_classes": [],
        "permission_classes": [],
    })


router = routers.DefaultRouter()
router.register("typed", viewset(Typed, TypedSerializer), basename="typed")
router.register("plain", viewset(PlainTyped, PlainTypedSerializer), basename="plain")
router.register("required", viewset(Required, RequiredSerializer), basename="required")
router.register("generic", viewset(Generic, GenericSerializer), basename="generic")

urlpatterns = [path("api/", include(router.urls))]
