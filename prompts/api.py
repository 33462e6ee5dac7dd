"""The prompts REST API: thin views over prompts.selectors and prompts.services.

Organisation admins change their organisation's prompts; members read. Global prompts are
visible read-only (the organisation inherits them) and changed only by staff in the Django
admin: writing to one through the API is a 403 ``global_prompt_read_only``. To customise a
global prompt an organisation creates its own prompt of the same name (``POST /prompts``),
which then shadows the global one for its turns. Another organisation's prompt is a 404.
"""

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from llmapp.errors import ApiError
from prompts import selectors, services
from prompts.models import Prompt, PromptVersion
from prompts.serializers import (
    ActivationResultOut,
    CompareOut,
    PromptCreateIn,
    PromptOut,
    ReasonIn,
    StatsOut,
    VersionCreateIn,
    VersionOut,
)
from tenants.permissions import IsTenantAdminOrReadOnly, IsTenantMember
from tenants.viewsets import TenantScopedViewSet


class PromptViewSet(TenantScopedViewSet):
    """Prompts visible to the caller's organisation, addressed by name."""

    queryset = Prompt.objects.all()
    # Members read, admins write (IsTenantAdminOrReadOnly) -- checked in ``_require_admin`` AFTER
    # the lookup, so another organisation's member writing to a prompt gets 404, never 403.
    permission_classes = [IsTenantMember]
    lookup_field = "name"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    serializer_class = PromptOut

    def get_queryset(self):
        # Visibility is wider than the base mixin's "own rows only": global prompts are readable
        # by every organisation. Still scoped by the tenant, in one selector.
        return selectors.prompts_visible(organization=self.tenant.organization).prefetch_related(
            Prefetch(
                "versions",
                queryset=PromptVersion.objects.filter(is_active=True).select_related("created_by"),
                to_attr="active_versions",
            )
        )

    def get_object(self) -> Prompt:
        return selectors.prompt_get_visible(
            organization=self.tenant.organization, name=self.kwargs["name"]
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "tenant": self.tenant}

    def _require_admin(self) -> None:
        if not IsTenantAdminOrReadOnly().has_permission(self.request, self):
            self.permission_denied(self.request)

    def _writable_object(self) -> Prompt:
        prompt = self.get_object()
        self._require_admin()
        if prompt.organization_id != self.tenant.organization.pk:
            raise ApiError(
                "Global prompts are read-only here; staff change them in the admin. Create your "
                "organisation's own prompt of this name to override it.",
                code="global_prompt_read_only",
                status=status.HTTP_403_FORBIDDEN,
            )
        return prompt

    def _out(self, prompt: Prompt) -> dict:
        return PromptOut(prompt, context=self.get_serializer_context()).data

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(
            PromptOut(page, many=True, context=self.get_serializer_context()).data
        )

    @extend_schema(request=PromptCreateIn, responses={201: PromptOut})
    def create(self, request):
        self._require_admin()
        data = PromptCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        prompt = services.prompt_create(
            organization=self.tenant.organization, actor=self.tenant.user, **data.validated_data
        )
        return Response(self._out(prompt), status=status.HTTP_201_CREATED)

    def retrieve(self, request, name=None):
        return Response(self._out(self.get_object()))

    @extend_schema(methods=["GET"], responses=VersionOut(many=True))
    @extend_schema(methods=["POST"], request=VersionCreateIn, responses={201: VersionOut})
    @action(detail=True, methods=["get", "post"])
    def versions(self, request, name=None):
        if request.method == "GET":
            prompt = self.get_object()
            page = self.paginate_queryset(selectors.prompt_versions(prompt=prompt))
            return self.get_paginated_response(VersionOut(page, many=True).data)
        prompt = self._writable_object()
        data = VersionCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.prompt_version_create(
            prompt=prompt, actor=self.tenant.user, **data.validated_data
        )
        return Response(VersionOut(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReasonIn, responses=ActivationResultOut)
    @action(detail=True, methods=["put"], url_path=r"activate/(?P<version>[0-9]+)")
    def activate(self, request, name=None, version=None):
        prompt = self._writable_object()
        data = ReasonIn(data=request.data or {})
        data.is_valid(raise_exception=True)
        result = services.prompt_activate(
            prompt=prompt,
            version=int(version),
            actor=self.tenant.user,
            reason=data.validated_data["reason"],
        )
        return Response(ActivationResultOut(result).data)

    @extend_schema(request=ReasonIn, responses=ActivationResultOut)
    @action(detail=True, methods=["post"])
    def rollback(self, request, name=None):
        prompt = self._writable_object()
        data = ReasonIn(data=request.data or {})
        data.is_valid(raise_exception=True)
        result = services.prompt_rollback(
            prompt=prompt, actor=self.tenant.user, reason=data.validated_data["reason"]
        )
        return Response(ActivationResultOut(result).data)

    @extend_schema(responses=StatsOut)
    @action(detail=True, methods=["get"])
    def stats(self, request, name=None):
        prompt = self.get_object()
        # Only this organisation's messages, also for a global prompt shared by every tenant.
        versions = selectors.prompt_stats(prompt=prompt, organization=self.tenant.organization)
        return Response(
            StatsOut(
                {
                    "prompt": prompt.name,
                    "scope": "organization" if prompt.organization_id else "global",
                    "versions": versions,
                }
            ).data
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("a", int, required=True, description="version number"),
            OpenApiParameter("b", int, required=True, description="version number"),
        ],
        responses=CompareOut,
    )
    @action(detail=True, methods=["get"])
    def compare(self, request, name=None):
        prompt = self.get_object()
        a = selectors.parse_version_param(request.query_params.get("a"), name="a")
        b = selectors.parse_version_param(request.query_params.get("b"), name="b")
        result = selectors.prompt_compare(
            prompt=prompt, a=a, b=b, organization=self.tenant.organization
        )
        return Response(CompareOut({"prompt": prompt.name, **result}).data)
