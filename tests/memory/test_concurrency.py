"""Parallel summarisation: ten concurrent triggers make one summary per range, and the database
refuses overlapping or gapped ranges even when the application's guard is bypassed."""

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from memory.models import Summary
from memory.services import summary_generate, summary_store
from memory.tasks import summarize_conversation
from tests.memory.conftest import add_messages, filler, make_conversation


@pytest.fixture(autouse=True)
def _one_request_per_attempt(settings):
    settings.LLM_MAX_RETRIES = 0


def run_in_threads(target, count: int = 10) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = target()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_tasks_make_one_summary(alice):
    conversation = make_conversation(alice)
    add_messages(conversation, [filler(i) for i in range(1, 61)])
    results = run_in_threads(lambda: summarize_conversation(str(conversation.pk)))
    rows = list(
        Summary.objects.filter(conversation=conversation).values_list("start_seq", "end_seq")
    )
    assert rows == [(1, 40)]
    assert sum(1 for r in results if r is not None) == 1


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_generations_without_the_lock_still_store_one(alice):
    """Bypass the cache lock: all ten call the model, the row lock lets one range in."""
    conversation = make_conversation(alice)
    add_messages(conversation, [filler(i) for i in range(1, 61)])
    results = run_in_threads(lambda: summary_generate(conversation_id=conversation.pk))
    assert sum(1 for r in results if r is not None) == 1
    assert Summary.objects.filter(conversation=conversation).count() == 1


@pytest.mark.django_db
def test_database_refuses_overlaps_and_gaps(alice):
    if connection.vendor != "postgresql":
        pytest.skip("the chain and exclusion constraints are PostgreSQL-only")
    conversation = make_conversation(alice)
    Summary.objects.create(
        conversation=conversation, start_seq=1, end_seq=10, content="a", model="m"
    )
    bad = [(5, 12), (11, 9), (0, 3), (12, 20), (3, 30)]  # overlap, reversed, zero, gap, overlap
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the chain key is deferred to commit
    for start, end in bad:
        row = Summary(
            conversation=conversation, start_seq=start, end_seq=end, content="x", model="m"
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            row.save()
    Summary.objects.create(
        conversation=conversation, start_seq=11, end_seq=20, content="b", model="m"
    )
    assert list(Summary.objects.values_list("start_seq", "end_seq")) == [(1, 10), (11, 20)]


@pytest.mark.django_db
@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    attempts=st.lists(
        st.tuples(st.integers(0, 4), st.integers(1, 60), st.integers(0, 30)), max_size=25
    )
)
def test_stored_ranges_never_overlap_or_leave_gaps(alice, attempts):
    """Whatever sequence of (possibly stale or wrong) store attempts, the ranges form a chain."""
    conversation = make_conversation(alice)
    ids: list[int | None] = [None]
    for previous_index, start, length in attempts:
        previous_id = ids[min(previous_index, len(ids) - 1)]
        stored = summary_store(
            conversation_id=conversation.pk,
            previous_id=previous_id,
            start_seq=start,
            end_seq=start + length,
            content="s",
            tokens_in=1,
            tokens_out=1,
            model="m",
        )
        if stored is not None:
            ids.append(stored.pk)
    ranges = list(
        Summary.objects.filter(conversation=conversation)
        .order_by("start_seq")
        .values_list("start_seq", "end_seq")
    )
    expected_start = 1
    for start, end in ranges:
        assert start == expected_start
        assert end >= start
        expected_start = end + 1


@pytest.mark.django_db
def test_a_chain_goes_with_its_conversation_but_not_piece_by_piece(alice):
    if connection.vendor != "postgresql":
        pytest.skip("the chain key is PostgreSQL-only")
    conversation = make_conversation(alice)
    rows = [
        Summary.objects.create(
            conversation=conversation, start_seq=a, end_seq=b, content="s", model="m"
        )
        for a, b in [(1, 10), (11, 20), (21, 30)]
    ]
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(IntegrityError), transaction.atomic():
        rows[1].delete()  # would leave a gap under summary 21-30
    conversation.delete()
    assert not Summary.objects.exists()
