"""Fixtures of the chat-page tests: a member with a password, the collected static files and
a headless Chromium driven by Selenium.

Chromium comes from Debian (``apt-get install chromium chromium-driver``); nothing is downloaded
at run time. Without it the browser tests FAIL (never skip): the page would otherwise go
untested without anyone noticing.
"""

import os
import shutil

import pytest
from django.conf import settings
from django.core.management import call_command

from tenants.services import tenant_member_ensure

PASSWORD = "correct horse battery staple"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB; Chromium would crash on it
    "--window-size=1280,800",
    "--force-device-scale-factor=1",
]
INSTALL_HINT = (
    "Install the Debian packages: apt-get update && apt-get install -y chromium chromium-driver "
    "(or set CHROMIUM_BINARY / CHROMEDRIVER to their paths)."
)


@pytest.fixture
def member(db):
    """A member of the 'acme' organisation who can log in with PASSWORD."""
    membership = tenant_member_ensure(org_slug="acme", username="dana", role="member")
    membership.user.set_password(PASSWORD)
    membership.user.save(update_fields=["password"])
    return membership


@pytest.fixture(scope="session")
def collected_static(django_db_blocker):
    """The live server runs with DEBUG off, where ``/static/`` is served from STATIC_ROOT (as in
    production): collect once per run (unchanged files are skipped, so it is quick)."""
    with django_db_blocker.unblock():
        call_command("collectstatic", interactive=False, verbosity=0)
    assert (settings.STATIC_ROOT / "web" / "chat.js").is_file()
    return settings.STATIC_ROOT


def _executable(env_name: str, *names: str) -> str:
    found = os.environ.get(env_name) or next(filter(None, map(shutil.which, names)), None)
    if not found or not os.access(found, os.X_OK):
        pytest.fail(f"{' / '.join(names)} not found: the browser test needs it. {INSTALL_HINT}")
    return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium at 1280x800 with a fresh profile, via the Debian chromedriver."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -r requirements-dev.txt")
    options = webdriver.ChromeOptions()
    options.binary_location = _executable("CHROMIUM_BINARY", "chromium", "chromium-browser")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # The path given to Service makes Selenium skip Selenium Manager (no download, no network).
    service = Service(executable_path=_executable("CHROMEDRIVER", "chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    # --window-size counts the (invisible) browser frame; the page itself must get 1280x800.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def test_output_dir():
    path = settings.BASE_DIR / "test-output"
    path.mkdir(exist_ok=True)
    return path
