"""Twenty concurrent activations of different versions on real PostgreSQL: no error, exactly one
active version at the end, and twenty activation rows forming a consistent chain."""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection

from prompts.models import PromptActivation, PromptVersion
from prompts.services import prompt_activate

from .conftest import make_prompt

N = 20


def assert_consistent_chain(prompt, first_from: int) -> None:
    rows = list(
        PromptActivation.objects.filter(prompt=prompt, reason__startswith="race")
        .select_related("from_version", "to_version")
        .order_by("id")
    )
    assert len(rows) == N
    assert rows[0].from_version.version == first_from
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.from_version_id == before.to_version_id
    assert {r.to_version.version for r in rows} == set(range(2, N + 2))
    active = list(PromptVersion.objects.filter(prompt=prompt, is_active=True))
    assert len(active) == 1
    assert active[0].pk == rows[-1].to_version_id


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_activations_through_the_service(alice):
    prompt = make_prompt(alice.org, "race", [f"text {i}" for i in range(1, N + 2)], active=1)
    barrier = threading.Barrier(N)

    def activate(version: int):
        barrier.wait()
        try:
            return prompt_activate(prompt=prompt, version=version, reason=f"race {version}").changed
        finally:
            connection.close()  # this thread's connection goes back to the pool

    with ThreadPoolExecutor(N) as pool:
        changed = list(pool.map(activate, range(2, N + 2)))
    assert all(changed)
    assert_consistent_chain(prompt, first_from=1)


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_activations_through_the_api(alice, live_asgi_url):
    prompt = make_prompt(alice.org, "race", [f"text {i}" for i in range(1, N + 2)], active=1)
    barrier = threading.Barrier(N)
    headers = {"Authorization": f"Bearer {alice.admin_key}"}

    def activate(version: int) -> httpx.Response:
        with httpx.Client(base_url=live_asgi_url, headers=headers, timeout=30) as client:
            barrier.wait()
            return client.put(
                f"/api/v1/prompts/race/activate/{version}", json={"reason": f"race {version}"}
            )

    with ThreadPoolExecutor(N) as pool:
        responses = list(pool.map(activate, range(2, N + 2)))
    assert [r.status_code for r in responses] == [200] * N, [r.text for r in responses]
    assert all(r.json()["changed"] for r in responses)
    assert_consistent_chain(prompt, first_from=1)
