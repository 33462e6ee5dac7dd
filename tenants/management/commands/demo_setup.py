"""Idempotent demo data for ``make run``: an organisation, a user with an API key, a superuser."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from tenants.selectors import tenant_from_api_key
from tenants.services import api_key_create, tenant_member_ensure

DEMO_ORG = "demo"
DEMO_USER = "demo"
ADMIN_USER = "admin"


class Command(BaseCommand):
    help = "Create (once) the demo organisation, user, API key and admin superuser; print them."

    def add_arguments(self, parser):
        parser.add_argument("--password", default="admin", help="admin and demo user password")

    def handle(self, *args, password, **options):
        membership = tenant_member_ensure(
            org_slug=DEMO_ORG, username=DEMO_USER, role="admin", org_name="Demo Organisation"
        )
        demo_user = membership.user
        if not demo_user.has_usable_password():
            demo_user.set_password(password)
            demo_user.save(update_fields=["password"])

        # The key is stored hashed, so the raw key is kept in var/ (git-ignored) for later runs.
        key_file = settings.VAR_DIR / "demo_api_key"
        settings.VAR_DIR.mkdir(exist_ok=True)
        raw_key = key_file.read_text().strip() if key_file.exists() else ""
        if not raw_key or tenant_from_api_key(raw_key) is None:
            raw_key = api_key_create(
                organization=membership.organization, user=demo_user, name="demo"
            ).raw_key
            key_file.write_text(raw_key + "\n")
            key_file.chmod(0o600)

        User = get_user_model()
        admin, created = User.objects.get_or_create(
            username=ADMIN_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            admin.set_password(password)
            admin.save()
        tenant_member_ensure(org_slug=DEMO_ORG, username=ADMIN_USER, role="admin")

        self.stdout.write(f"Demo organisation: {DEMO_ORG}")
        self.stdout.write(f"Admin login:       {ADMIN_USER} / {password} (also a demo org admin)")
        self.stdout.write(f"Chat page login:   {DEMO_USER} / {password}")
        self.stdout.write(f"Demo API key:      {raw_key}")
