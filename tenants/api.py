from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.serializers import MeOut


class MeView(APIView):
    """The caller's organisation, user and role."""

    @extend_schema(responses=MeOut)
    def get(self, request):
        tenant = request.auth
        return Response(
            MeOut(
                {
                    "organization": tenant.organization,
                    "user": tenant.user,
                    "role": tenant.membership.role,
                }
            ).data
        )
