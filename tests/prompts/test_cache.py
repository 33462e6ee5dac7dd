"""The active-prompt cache: shared across processes through Redis, invalidated after commit by an
epoch bump, immune to a reader racing a change, and never fatal when Redis is down."""

import json
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from prompts import cache as prompt_cache
from prompts.selectors import _active_row, prompt_active_for
from prompts.services import prompt_activate, prompt_version_create

from .conftest import make_prompt

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (shared cache)")


class Reader:
    """Another Django process on the same database and Redis."""

    def __init__(self):
        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "DATABASE_POOL_MAX_SIZE": "0",
            "LOG_LEVEL": "WARNING",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.prompts._reader"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=settings.BASE_DIR,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def ask(self, organization, name: str) -> dict:
        self.proc.stdin.write(f"{organization.pk} {name}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def reader():
    r = Reader()
    yield r
    r.close()


@pytest.mark.django_db(transaction=True)
def test_activation_is_seen_by_the_next_lookup_in_another_process(alice, reader):
    make_prompt(alice.org, "svc", ["one", "two"], active=1)
    assert reader.ask(alice.org, "svc")["version"] == 1
    assert reader.ask(alice.org, "svc") == {"version": 1, "queries": 0}  # cached in Redis
    with CaptureQueriesContext(connection) as queries:  # this process shares that entry
        assert prompt_active_for(organization=alice.org, name="svc").version == 1
    assert len(queries) == 0

    prompt_activate(prompt=alice.org.prompts.get(name="svc"), version=2)
    assert reader.ask(alice.org, "svc")["version"] == 2  # the very next lookup, no TTL wait
    assert reader.ask(alice.org, "svc") == {"version": 2, "queries": 0}


@pytest.mark.django_db(transaction=True)
def test_a_global_change_reaches_every_organisation_but_not_an_overriding_one(alice, bob, reader):
    shared = make_prompt(None, "shared", ["g1", "g2"], active=1)
    make_prompt(alice.org, "shared", ["alice own"], active=1)
    assert reader.ask(bob.org, "shared")["version"] == 1
    assert reader.ask(alice.org, "shared")["version"] == 1
    prompt_activate(prompt=shared, version=2)
    assert reader.ask(bob.org, "shared")["version"] == 2
    alice_view = prompt_active_for(organization=alice.org, name="shared")
    assert alice_view.content == "alice own"


@pytest.mark.django_db(transaction=True)
def test_a_reader_racing_the_change_cannot_put_the_old_version_back(alice):
    prompt = make_prompt(alice.org, "svc", ["one", "two"], active=1)
    epoch_before = None

    def slow_load():
        nonlocal epoch_before
        row = _active_row(alice.org.pk, "svc")  # reads v1 ...
        epoch_before = cache.get(prompt_cache.epoch_key(str(alice.org.pk), "svc"))
        prompt_activate(prompt=prompt, version=2)  # ... v2 commits and bumps the epoch ...
        return row  # ... and the reader stores its stale v1

    stale = prompt_cache.cached_lookup(alice.org.pk, "svc", slow_load)
    assert stale["version"] == 1
    epoch_after = cache.get(prompt_cache.epoch_key(str(alice.org.pk), "svc"))
    assert epoch_after == epoch_before + 1
    # The stale value sits under the old epoch, where nobody looks any more.
    global_epoch = cache.get(prompt_cache.epoch_key("global", "svc"))
    old_key = prompt_cache.entry_key(str(alice.org.pk), "svc", epoch_before, global_epoch)
    assert cache.get(old_key)["version"] == 1
    assert prompt_active_for(organization=alice.org, name="svc").version == 2


@pytest.mark.django_db(transaction=True)
def test_invalidation_waits_for_commit_and_skips_a_rolled_back_change(alice):
    prompt = make_prompt(alice.org, "svc", ["one", "two", "three"], active=1)
    assert prompt_active_for(organization=alice.org, name="svc").version == 1
    key = prompt_cache.epoch_key(str(alice.org.pk), "svc")
    epoch = cache.get(key)

    with transaction.atomic():
        prompt_activate(prompt=prompt, version=2)
        assert cache.get(key) == epoch  # not yet: other processes would re-cache v1 from the DB
    assert cache.get(key) == epoch + 1
    assert prompt_active_for(organization=alice.org, name="svc").version == 2

    def activate_then_abort():
        with transaction.atomic():
            prompt_activate(prompt=prompt, version=3)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        activate_then_abort()
    assert cache.get(key) == epoch + 1
    assert prompt_active_for(organization=alice.org, name="svc").version == 2


@pytest.mark.django_db(transaction=True)
def test_new_version_created_active_invalidates(alice):
    prompt = make_prompt(alice.org, "svc", ["one"], active=1)
    assert prompt_active_for(organization=alice.org, name="svc").version == 1
    prompt_version_create(prompt=prompt, content="two", activate=True)
    assert prompt_active_for(organization=alice.org, name="svc").version == 2


DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
}


@pytest.mark.django_db
def test_redis_down_falls_back_to_the_database_without_failing_the_turn(alice):
    make_prompt(alice.org, "svc", ["one", "two"], active=2)
    with override_settings(CACHES=DEAD_REDIS):
        started = time.monotonic()
        first = prompt_active_for(organization=alice.org, name="svc")
        first_took = time.monotonic() - started
        assert not prompt_cache.cache_available()  # the dead Redis was really tried
        started = time.monotonic()
        for _ in range(20):  # the breaker skips the dead cache: no timeout per turn
            assert prompt_active_for(organization=alice.org, name="svc").version == 2
        rest_took = time.monotonic() - started
    assert first.version == 2
    assert first_took < 2
    assert rest_took < 0.5
