"""``python -m bench.appsetup [--migrate]``: prepare the bench database in one Django start-up
(each ``manage.py`` call costs seconds of CPU on this machine): migrate when asked, then create
the bench organisation's admin API key and print it alone on the last line."""

import io
import os
import sys


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmapp.settings")
    import django
    from django.core.management import call_command

    django.setup()
    if "--migrate" in argv:
        call_command("migrate", "--noinput", verbosity=0)
    out = io.StringIO()
    call_command("create_api_key", org="bench", user="bench", role="admin", stdout=out)
    print(out.getvalue().strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
