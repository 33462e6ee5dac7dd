"""One app process of the two-process exactness test (run as a script, not collected).

    python proc_worker.py ORG_UUID LIMIT WINDOW_S ATTEMPTS GO_FILE

Configures Django from the environment (the test passes its REDIS_URL), waits until GO_FILE
exists so that both processes fire together, makes ATTEMPTS concurrent ``request_admit`` calls
for the organisation, and prints ``admitted=<n> refused=<m>``.
"""

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmapp.settings")

import django  # noqa: E402

django.setup()

from llmapp.errors import ApiError  # noqa: E402
from tenants.limits import request_admit  # noqa: E402
from tenants.models import Membership, Organization  # noqa: E402
from tenants.selectors import TenantContext  # noqa: E402


def wait_for(go_file: Path) -> None:
    while not go_file.exists():
        time.sleep(0.005)


async def main(org_id: str, limit: int, attempts: int, go_file: Path) -> None:
    org = Organization(
        id=uuid.UUID(org_id),
        slug="shared",
        rate_limit_requests_per_minute=limit,
        rate_limit_user_requests_per_minute=0,
    )
    tenant = TenantContext(
        organization=org,
        user=SimpleNamespace(pk=os.getpid(), username="worker"),
        membership=Membership(role="member"),
    )
    # Warm the connection pool and the script cache before the start signal.
    from tenants.ratelimit.backends import limiter

    await limiter().redis._async_script().registered_client.ping()
    print("ready", flush=True)
    await asyncio.to_thread(wait_for, go_file)

    async def one() -> int | None:
        try:
            await request_admit(tenant=tenant)
        except ApiError as exc:
            return exc.status_code
        return None

    results = await asyncio.gather(*(one() for _ in range(attempts)))
    admitted = results.count(None)
    print(f"admitted={admitted} refused={results.count(429)}", flush=True)


if __name__ == "__main__":
    org_id, limit, window, attempts, go = sys.argv[1:6]
    os.environ["RATE_LIMIT_WINDOW_SECONDS"] = window
    from django.conf import settings

    settings.RATE_LIMIT_WINDOW_SECONDS = float(window)
    asyncio.run(main(org_id, int(limit), int(attempts), Path(go)))
