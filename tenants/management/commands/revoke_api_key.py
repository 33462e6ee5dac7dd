from django.core.management.base import BaseCommand, CommandError

from tenants.models import ApiKey
from tenants.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key by its display prefix."

    def add_arguments(self, parser):
        parser.add_argument("prefix")

    def handle(self, *args, prefix, **options):
        try:
            api_key = api_key_revoke(prefix=prefix)
        except ApiKey.DoesNotExist as exc:
            raise CommandError(f"No API key with prefix {prefix!r}.") from exc
        self.stdout.write(f"Revoked {api_key.prefix} (at {api_key.revoked_at.isoformat()}).")
