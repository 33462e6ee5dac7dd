import pytest
from django.test import override_settings


@pytest.fixture
def fake(fake_anthropic_server):  # noqa: F811
    return fake_anthropic_server


@pytest.fixture(autouse=True, params=["aiohttp", "httpx"])
def llm_settings(fake, request):
    """Point the client layer at the fake, with short timeouts and fast retries; every test of
    the client layer runs with both HTTP transports (LLM_HTTP_TRANSPORT)."""
    with override_settings(
        LLM_HTTP_TRANSPORT=request.param,
        ANTHROPIC_API_KEY="",
        ANTHROPIC_BASE_URL=fake.url,
        LLM_MAX_RETRIES=2,
        LLM_FIRST_TOKEN_TIMEOUT_SECONDS=10.0,
        LLM_TOTAL_TIMEOUT_SECONDS=30.0,
    ):
        yield
