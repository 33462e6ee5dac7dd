"""The chat page in a real browser (headless Chromium) against the live ASGI server, the real
Channels stack and the SDK talking to fake_anthropic: log in, create a conversation, watch a
reply stream in, stop one, rename, reopen the history, see a model error with Retry, archive.
The Markdown renderer is also checked directly, in the page, on hostile input.

Screenshots land in ``test-output/`` (git-ignored) for people to look at.
"""

import time

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from conversations.models import Conversation, Message
from tenants.services import tenant_member_ensure
from tests.web.conftest import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_for(driver, condition, timeout: float = 15, message: str = ""):
    """Poll ``condition(driver)`` until truthy; on timeout, say what was awaited and where."""
    if not message:
        code = condition.__code__
        message = (
            f"waited {timeout}s at {code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno}"
        )
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: condition(d), message
    )


def click(driver, css: str) -> None:
    """Click, retrying while the sidebar is re-rendered under the pointer (it is rebuilt when
    the conversation list is refreshed after a reply)."""

    def attempt(d):
        try:
            d.find_element(By.CSS_SELECTOR, css).click()
        except (StaleElementReferenceException, NoSuchElementException):
            return False
        return True

    wait_for(driver, attempt, message=f"could not click {css}")


def last_reply(driver):
    replies = driver.find_elements(By.CSS_SELECTOR, "#messages .msg-assistant")
    return replies[-1] if replies else None


def reply_state(driver) -> tuple[str, str]:
    """(text, class list) of the newest reply, read in one script call so both match."""
    return tuple(
        driver.execute_script(
            "const r = [...document.querySelectorAll('#messages .msg-assistant')].pop();"
            "return r ? [r.querySelector('.msg-body').textContent, r.className] : ['', ''];"
        )
    )


def send(driver, text: str) -> None:
    box = driver.find_element(By.ID, "input")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def log_in(driver, live_asgi_url: str, screenshot=None) -> None:
    driver.delete_all_cookies()
    driver.get(live_asgi_url + "/")
    assert "/login/" in driver.current_url  # a visitor is sent to the login page first
    if screenshot:
        driver.save_screenshot(str(screenshot))
    driver.find_element(By.ID, "id_username").send_keys("dana")
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    wait_for(driver, lambda d: d.current_url == live_asgi_url + "/", message="no redirect to /")
    wait_for(
        driver,
        lambda d: d.find_element(By.ID, "conn-status").get_attribute("data-state") == "open",
        message="the WebSocket did not connect",
    )


MARKDOWN_SAMPLE = """### A heading
Some **bold**, some *italics*, `inline code` and [a link](https://example.com/docs).

- first item
- second item with `code`

```python
def greet(name: str) -> str:
    return f"<b>Hello {name}</b>"  # shown as text, never as HTML
```
<img src=x onerror=alert(1)> stays text."""


def test_renderer_never_turns_model_text_into_html(
    browser, live_asgi_url, member, collected_static, test_output_dir
):
    log_in(browser, live_asgi_url)
    hostile = [
        "<img src=x onerror=alert(1)>",
        '"><script>alert(1)</script>',
        "[click](javascript:alert(1))",
        '[x](https://example.com" onmouseover="alert(1))',
        "```html\n<iframe src=//evil></iframe>\n```",
        "`<b>` **<i>x</i>** _<svg/onload=alert(1)>_",
    ]
    counts = browser.execute_script(
        """
        const box = document.createElement('div');
        return arguments[0].map((text) => {
          box.innerHTML = window.ChatMarkdown.render(text);
          return {
            elements: [...box.querySelectorAll('img,script,iframe,svg,b,i')].length,
            handlers: [...box.querySelectorAll('*')].filter(
              (n) => [...n.attributes].some((a) => a.name.startsWith('on'))).length,
            jsLinks: [...box.querySelectorAll('a')].filter(
              (a) => !/^https?:/.test(a.getAttribute('href'))).length,
            text: box.textContent,
          };
        });
        """,
        hostile,
    )
    for source, result in zip(hostile, counts, strict=True):
        assert result["elements"] == 0, source
        assert result["handlers"] == 0, source
        assert result["jsLinks"] == 0, source
    assert "<img src=x onerror=alert(1)>" in counts[0]["text"]  # shown as text, not dropped

    rendered = browser.execute_script(
        "return window.ChatMarkdown.render(arguments[0]);",
        "**bold** *it* `code` [site](https://example.com/a_b?x=1&y=2)\n\n```py\nx = 1\n```",
    )
    assert "<strong>bold</strong>" in rendered
    assert "<em>it</em>" in rendered
    assert "<code>code</code>" in rendered
    assert 'href="https://example.com/a_b?x=1&amp;y=2"' in rendered
    assert '<pre data-lang="py"><code>x = 1</code></pre>' in rendered

    # How rendered Markdown looks in a reply, for people (test-output/web-markdown.png).
    browser.execute_script(
        """
        const node = document.createElement('article');
        node.className = 'msg msg-assistant';
        node.innerHTML = '<div class="msg-body md"></div><footer class="msg-meta"></footer>';
        node.firstChild.innerHTML = window.ChatMarkdown.render(arguments[0]);
        document.getElementById('empty-state').hidden = true;
        document.getElementById('messages').append(node);
        """,
        MARKDOWN_SAMPLE,
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#messages pre code")
    assert browser.find_elements(By.CSS_SELECTOR, "#messages img") == []
    browser.save_screenshot(str(test_output_dir / "web-markdown.png"))


def test_chat_page_end_to_end(browser, live_asgi_url, member, collected_static, test_output_dir):
    driver = browser
    colleague = tenant_member_ensure(org_slug="acme", username="erin", role="member")
    Conversation.objects.create(
        organization=member.organization, user=colleague.user, title="Erin's notes"
    )
    log_in(driver, live_asgi_url, screenshot=test_output_dir / "web-login.png")
    assert driver.find_element(By.CSS_SELECTOR, ".account-name").text == "dana"
    assert "Erin's notes" not in driver.find_element(By.ID, "conversation-list").text

    # Create a conversation.
    click(driver, "#new-chat")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".conv-item.active"))
    conversation = Conversation.objects.get(user=member.user)

    # Shift+Enter is a new line, Enter sends; the reply streams in.
    box = driver.find_element(By.ID, "input")
    box.send_keys("Hello **there**", Keys.SHIFT, Keys.ENTER, Keys.NULL)
    assert box.get_attribute("value") == "Hello **there**\n"
    assert not driver.find_elements(By.CSS_SELECTOR, "#messages .msg")
    send(driver, "[[fake:itl-ms=40]] [[fake:tokens=60]]")
    wait_for(driver, last_reply, message="no reply element")
    # Poll the page: the raw text received so far (the app's turn state) and the text shown.
    # Both must change several times before the end; the raw text only ever grows (the shown
    # one may shrink a little when a closing ** turns literal asterisks into bold).
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        raw = browser.execute_script(
            "const t = [...window.ChatApp.state.turns.values()][0]; return t ? t.text.length : -1;"
        )
        text, classes = reply_state(driver)
        if raw == -1 and text:
            break  # the turn is over
        if raw > 0 and (not seen or raw != seen[-1][0]):
            seen.append((raw, len(text)))
        time.sleep(0.05)
    final_text, classes = reply_state(driver)
    raw_lengths = [raw for raw, _ in seen]
    assert len(raw_lengths) >= 4, f"the reply did not stream in (lengths seen: {seen})"
    assert raw_lengths == sorted(set(raw_lengths))
    assert len({shown for _, shown in seen}) >= 4
    assert "is-streaming" not in classes
    assert "is-stopped" not in classes
    assert "is-failed" not in classes
    first = Message.objects.get(conversation=conversation, role="assistant")
    assert first.status == "complete"
    assert first.output_tokens == 60
    # The Markdown in the reply (the quoted "Hello **there**") is rendered, not shown raw.
    assert " ".join(final_text.split()) == " ".join(first.content.replace("**", "").split())
    assert last_reply(driver).find_element(By.CSS_SELECTOR, ".msg-body strong").text == "there"
    wait_for(  # the cost comes from the stored message when the end event has none
        driver, lambda d: "$" in last_reply(d).find_element(By.CSS_SELECTOR, ".msg-meta").text
    )
    meta = last_reply(driver).find_element(By.CSS_SELECTOR, ".msg-meta").text
    assert "60 out" in meta
    assert f"{first.input_tokens} in" in meta
    user_bubble = driver.find_elements(By.CSS_SELECTOR, "#messages .msg-user .msg-body")[-1]
    assert user_bubble.text.startswith("Hello **there**\n")  # user text shown as typed

    # A long reply, stopped half-way: the partial text stays, marked stopped.
    send(driver, "Tell me a long story [[fake:itl-ms=50]] [[fake:tokens=3000]]")
    stop = driver.find_element(By.ID, "stop")
    wait_for(driver, lambda d: stop.is_displayed(), message="no Stop button while streaming")
    wait_for(driver, lambda d: len(reply_state(d)[0]) > 40, message="the long reply did not start")
    driver.save_screenshot(str(test_output_dir / "web-chat-streaming.png"))
    stop.click()
    wait_for(driver, lambda d: "is-stopped" in reply_state(d)[1], message="not marked stopped")
    stopped_text = reply_state(driver)[0]
    assert last_reply(driver).find_element(By.CSS_SELECTOR, ".msg-status").text == "Stopped"
    assert driver.find_element(By.ID, "send").is_displayed()
    time.sleep(0.4)
    assert reply_state(driver)[0] == stopped_text  # nothing more arrives after the stop
    stored = Message.objects.filter(conversation=conversation, role="assistant").last()
    assert stored.status == "stopped"
    assert 0 < stored.output_tokens < 3000

    # Model text with HTML in it: shown as text, never as an element; Markdown still applies.
    send(driver, "<img src=x onerror=alert(1)> **bold** [[fake:tokens=30]]")
    wait_for(
        driver,
        lambda d: (
            Message.objects.filter(conversation=conversation, role="assistant").count() == 3
            and "is-streaming" not in reply_state(d)[1]
            and "is-pending" not in reply_state(d)[1]
        ),
    )
    assert driver.find_elements(By.CSS_SELECTOR, "#messages img") == []
    assert "<img src=x onerror=alert(1)>" in reply_state(driver)[0]
    assert last_reply(driver).find_elements(By.CSS_SELECTOR, ".msg-body strong")

    # Rename in the sidebar.
    click(driver, ".conv-item.active .icon-rename")
    field = driver.find_element(By.CSS_SELECTOR, ".conv-rename")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("Streaming demo", Keys.ENTER)
    wait_for(driver, lambda d: d.find_element(By.ID, "conv-title").text == "Streaming demo")
    conversation.refresh_from_db()
    assert conversation.title == "Streaming demo"

    # Reopening the page shows the stored history, stopped reply included.
    driver.refresh()
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#messages .msg")) == 6)
    statuses = [
        e.text
        for e in driver.find_elements(By.CSS_SELECTOR, "#messages .msg-assistant .msg-status")
    ]
    assert statuses == ["Stopped"]
    driver.save_screenshot(str(test_output_dir / "web-chat.png"))

    # A model error is a readable message with a Retry button that sends again.
    driver.find_element(By.ID, "new-chat").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "conv-title").text == "New chat")
    wait_for(driver, lambda d: Conversation.objects.filter(user=member.user).count() == 2)
    failing = Conversation.objects.filter(user=member.user).exclude(pk=conversation.pk).get()
    send(driver, "Are you there? [[fake:status=529]]")
    error = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".msg-error"), timeout=30)[
        0
    ]
    assert "overloaded" in error.text
    driver.save_screenshot(str(test_output_dir / "web-chat-error.png"))
    error.find_element(By.CSS_SELECTOR, ".btn-retry").click()
    wait_for(
        driver,
        lambda d: Message.objects.filter(conversation=failing, role="user").count() == 2,
        message="Retry did not send the message again",
    )
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".msg-error"), timeout=30)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#messages .msg-user")) == 1

    # Archive: gone from the list, archived in the database.
    click(driver, ".conv-item.active .icon-archive")
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".conv-item")) == 1)
    failing.refresh_from_db()
    assert failing.archived is True


def test_a_refused_turn_shows_a_readable_error_and_a_timed_retry(
    browser, live_asgi_url, member, collected_static, settings, test_output_dir
):
    # A turn reserves more tokens than this (input estimate plus max_tokens): the first one
    # overshoots the window (as the limiter allows once), the next is refused with 429.
    settings.RATE_LIMIT_TOKENS_PER_MINUTE = 50
    log_in(browser, live_asgi_url)
    # No conversation open yet: the first message creates one.
    send(browser, "Hello [[fake:tokens=5]]")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".msg-assistant .meta-item"))
    send(browser, "Hello again")
    error = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".msg-error"))[0]
    assert "rate limit is reached" in error.text
    retry = error.find_element(By.CSS_SELECTOR, ".btn-retry")
    assert retry.get_attribute("disabled") is not None  # not before the server's Retry-After
    assert retry.text.startswith("Retry in ")
    assert Conversation.objects.filter(user=member.user).count() == 1
    assert Message.objects.filter(role="assistant", status="complete").count() == 1
    browser.save_screenshot(str(test_output_dir / "web-chat-rate-limited.png"))
