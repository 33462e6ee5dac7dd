import pytest
from django.test import override_settings


@pytest.fixture
def fake(fake_anthropic_server):  # noqa: F811
    return fake_anthropic_server


@pytest.fixture(autouse=True)
def llm_settings(fake):
    """Point the client layer at the fake, with short timeouts and fast retries."""
    with override_settings(
        ANTHROPIC_API_KEY="",
        ANTHROPIC_BASE_URL=fake.url,
        LLM_MAX_RETRIES=2,
        LLM_FIRST_TOKEN_TIMEOUT_SECONDS=10.0,
        LLM_TOTAL_TIMEOUT_SECONDS=30.0,
    ):
        yield
