from django.core.management.base import BaseCommand

from tenants.models import Membership
from tenants.services import api_key_create, tenant_member_ensure


class Command(BaseCommand):
    help = (
        "Create an API key, creating the organisation, user and membership when missing. "
        "The key is printed alone on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organisation slug")
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--role", choices=[r.value for r in Membership.Role], default=None)
        parser.add_argument("--name", default="", help="a label for the key")

    def handle(self, *args, org, user, role, name, **options):
        membership = tenant_member_ensure(org_slug=org, username=user, role=role)
        created = api_key_create(
            organization=membership.organization, user=membership.user, name=name
        )
        self.stdout.write(
            f"Created key {created.api_key.prefix} for {user} in {org} (role {membership.role})."
        )
        self.stdout.write(created.raw_key)
