"""The chat page at `/`, driven in a real headless Chromium (Debian's `chromium`) by Playwright.

The page talks to a scripted fake of the web API (tests/web/page_support.py) that serves the
package's own static files; the last test drives the page against the real app on the offline
demo provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.web.page_support import (
    CHROMIUM_ARGS,
    MODELS,
    SLOW_HEAD,
    SLOW_TAIL,
    FakeApi,
    chromium_path,
    serve,
)

expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        pytest.fail(
            "Debian's `chromium` is not installed (apt-get install -y chromium): the chat page "
            "is tested in a real headless browser, and Playwright's own browsers are not used."
        )
    browser = playwright.chromium.launch(
        executable_path=executable, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context per test: its own localStorage, nothing shared."""
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def fake() -> FakeApi:
    api = FakeApi()
    api.add_session("Older chat", [{"role": "user", "text": "hi"}], model=MODELS[1])
    api.add_session("Newer chat")
    return api


@pytest.fixture
def url(fake: FakeApi) -> Iterator[str]:
    with serve(fake.app) as base:
        yield base
        fake.release()  # a held answer finishes, so the server stops at once


def send(page: Page, prompt: str) -> None:
    page.locator("#prompt").fill(prompt)
    page.locator("#prompt").press("Enter")


def test_page_loads_and_lists_models_and_sessions(page: Page, url: str) -> None:
    page.goto(url)

    expect(page).to_have_title("chatscope")
    expect(page.locator("#model option")).to_have_text(["Server default", *MODELS])
    expect(page.locator("button.session")).to_have_count(2)
    expect(page.locator("button.session").first).to_contain_text("Newer chat")
    expect(page.get_by_label("Model")).to_be_visible()
    expect(page.get_by_label("Message")).to_be_visible()
    expect(page.locator("#notice")).to_be_hidden()


def test_new_chat_creates_a_session_and_selects_it(page: Page, url: str, fake: FakeApi) -> None:
    page.goto(url)
    expect(page.locator("button.session")).to_have_count(2)

    page.get_by_role("button", name="New chat").click()

    expect(page.locator("button.session")).to_have_count(3)
    assert len(fake.posted("/v1/sessions")) == 1
    expect(page.locator('button.session[aria-current="true"]')).to_have_count(1)
    expect(page.locator("#title")).to_have_text("New chat")
    expect(page.locator("#prompt")).to_be_focused()


def test_enter_streams_the_answer_as_it_arrives(page: Page, url: str, fake: FakeApi) -> None:
    page.goto(url)
    expect(page.locator("button.session")).to_have_count(2)
    page.locator("#prompt").fill("first line")
    page.locator("#prompt").press("Shift+Enter")
    page.locator("#prompt").press_sequentially("slow second line")
    assert page.locator("#prompt").input_value() == "first line\nslow second line"
    assert fake.posted("/messages") == []  # Shift+Enter only added a line

    page.locator("#prompt").press("Enter")

    answer = page.locator(".msg.assistant .text")
    expect(answer).to_have_text("".join(SLOW_HEAD))  # partial: the fake holds the rest back
    expect(page.locator("#send")).to_be_disabled()
    expect(page.locator(".msg.user")).to_contain_text("first line\nslow second line")
    expect(page.locator("#prompt")).to_have_value("")
    expect(page.locator(".msg.assistant .meta")).to_have_count(0)

    fake.release()

    expect(answer).to_have_text("".join(SLOW_HEAD) + SLOW_TAIL)
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator(".msg.assistant .meta")).to_contain_text("demo/chatscope-demo")
    assert len(fake.posted("/v1/sessions")) == 1  # the first message opened a session
    expect(page.locator("button.session").first).to_contain_text("first line")
    expect(page.locator("#title")).to_have_text("first line\nslow second line")


def test_answer_text_is_never_html_and_code_blocks_are_preformatted(page: Page, url: str) -> None:
    page.goto(url)
    send(page, "show me code")

    expect(page.locator(".msg.assistant pre code")).to_have_text("print('hi')\n")
    expect(page.locator(".msg.assistant .text")).to_contain_text("<b>this</b> stays plain text.")
    assert page.locator(".msg.assistant b").count() == 0
    assert "```" not in page.locator(".msg.assistant").inner_text()


def test_tool_call_is_folded_and_expands_to_arguments_and_result(page: Page, url: str) -> None:
    page.goto(url)
    send(page, "use a tool")

    fold = page.locator("details.tool")
    expect(fold.locator("summary")).to_have_text("tool: list_directory — done")
    expect(page.locator(".msg.assistant .text")).to_have_text("The workspace holds 4 entries.")
    expect(fold).not_to_have_attribute("open", "")
    expect(fold.locator("pre.args")).to_be_hidden()

    fold.locator("summary").click()

    expect(fold.locator("pre.args")).to_be_visible()
    expect(fold.locator("pre.args")).to_contain_text('"path": "."')
    expect(fold.locator("pre.result")).to_contain_text("pyproject.toml")


def test_failed_tool_result_is_highlighted_in_its_fold(page: Page, url: str) -> None:
    page.goto(url)
    send(page, "a bad tool")

    fold = page.locator("details.tool.failed")
    expect(fold.locator("summary")).to_have_text("tool: list_directory — failed")
    fold.locator("summary").click()
    expect(fold.locator("pre.error")).to_have_text("permission denied: /secret")


def test_error_event_is_shown_plainly_in_the_conversation(page: Page, url: str) -> None:
    page.goto(url)
    send(page, "cause an error")

    box = page.locator(".msg.assistant .error-box")
    expect(box).to_have_text("The provider is overloaded.")
    expect(box).to_have_attribute("role", "alert")
    expect(page.locator(".msg.assistant .text")).to_have_text("Let me check")
    expect(page.locator("#send")).to_be_enabled()


def test_rate_limited_answer_is_shown_with_its_retry_after(page: Page, url: str) -> None:
    page.goto(url)
    send(page, "are you busy?")

    expect(page.locator(".msg.assistant .error-box")).to_have_text(
        "Too many requests for this tenant. (retry after 7 s)"
    )
    expect(page.locator("#send")).to_be_enabled()


def test_401_asks_for_a_key_and_then_sends_it_as_bearer(page: Page) -> None:
    fake = FakeApi(api_key="sekret-key")
    fake.add_session("Keyed chat")
    with serve(fake.app) as base:
        page.goto(base)

        expect(page.locator("#key-note")).to_have_text("This server needs an API key")
        expect(page.get_by_label("API key")).to_be_visible()
        expect(page.locator("#notice")).to_contain_text("Missing or invalid API key.")
        assert fake.authorizations()[0] is None  # no key yet: no header at all

        page.get_by_label("API key").fill("sekret-key")
        page.get_by_role("button", name="Save key").click()

        expect(page.locator("button.session")).to_have_count(1)
        expect(page.locator("button.session")).to_contain_text("Keyed chat")
        expect(page.locator("#key-note")).to_be_hidden()
        expect(page.locator("#notice")).to_be_hidden()
        assert fake.authorizations()[-1] == "Bearer sekret-key"

        page.reload()  # the key is kept in localStorage
        expect(page.locator("#model option")).to_have_count(len(MODELS) + 1)
        send(page, "hello")
        expect(page.locator(".msg.assistant .text")).to_have_text("Hello! I am a scripted answer.")
        assert set(fake.authorizations()[-3:]) == {"Bearer sekret-key"}


def test_model_picker_choice_is_sent_with_the_next_message(
    page: Page, url: str, fake: FakeApi
) -> None:
    page.goto(url)
    expect(page.locator("#model option")).to_have_count(len(MODELS) + 1)
    send(page, "hello")
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator(".msg.assistant .meta")).to_have_count(1)
    assert "model" not in fake.posted("/messages")[0].body  # the server default

    page.get_by_label("Model").select_option("openai/gpt-4o-mini")
    send(page, "hello again")
    expect(page.locator(".msg.assistant .meta")).to_have_count(2)

    assert fake.posted("/messages")[-1].body == {
        "content": "hello again",
        "model": "openai/gpt-4o-mini",
    }
    page.get_by_label("Model").select_option("researcher")
    page.get_by_role("button", name="New chat").click()
    expect(page.locator("button.session")).to_have_count(4)
    assert fake.posted("/v1/sessions")[-1].body == {"model": "researcher"}


def test_clicking_a_session_loads_its_messages(page: Page, fake: FakeApi) -> None:
    call = {"id": "c1", "name": "list_directory", "arguments": {"path": "src"}}
    result = {"id": "c1", "name": "list_directory", "result": "chatscope/\n", "error": None}
    sid = fake.add_session(
        "Workspace tour",
        [
            {"role": "user", "text": "What is in src?"},
            {"role": "assistant", "text": "", "tool_calls": [call], "tool_results": []},
            {"role": "tool", "text": "", "tool_calls": [], "tool_results": [result]},
            {"role": "assistant", "text": "One package: chatscope.", "tool_calls": []},
        ],
        model="openai/gpt-4o-mini",
    )
    with serve(fake.app) as base:
        page.goto(base)
        page.locator(f'button.session[data-id="{sid}"]').click()

        expect(page.locator("#title")).to_have_text("Workspace tour")
        expect(page.locator(".msg.user")).to_contain_text("What is in src?")
        expect(page.locator(".msg.assistant")).to_have_count(1)
        expect(page.locator(".msg.assistant .text")).to_have_text("One package: chatscope.")
        expect(page.locator("details.tool summary")).to_have_text("tool: list_directory — done")
        expect(page.get_by_label("Model")).to_have_value("openai/gpt-4o-mini")
        expect(page.locator(f'button.session[data-id="{sid}"]')).to_have_attribute(
            "aria-current", "true"
        )

        send(page, "and more?")
        expect(page.locator(".msg.assistant .meta")).to_have_count(1)  # the new answer is done
        assert fake.posted("/messages")[-1].path == f"/v1/sessions/{sid}/messages"


def test_deleting_a_session_removes_it(page: Page, url: str, fake: FakeApi) -> None:
    page.goto(url)
    expect(page.locator("button.session")).to_have_count(2)
    page.once("dialog", lambda dialog: dialog.accept())

    page.get_by_role("button", name="Delete Older chat").click()

    expect(page.locator("button.session")).to_have_count(1)
    expect(page.locator("button.session")).to_contain_text("Newer chat")
    assert [s["title"] for s in fake.sessions.values()] == ["Newer chat"]


def test_page_against_the_real_app_on_the_demo_provider(page: Page, tmp_path: Path) -> None:
    """The page and `chatscope.web.create_app` agree: the demo provider lists the workspace."""
    from chatscope.testing import build_test_app  # here: the fake-API tests need neither
    from chatscope.web import create_app

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("hello\n")
    container = build_test_app(
        workspace=workspace, history_backend="database", data_dir=tmp_path / "data"
    )
    with serve(create_app(container)) as base:
        page.goto(base)
        expect(page.locator("#model option")).to_contain_text(["Server default", "demo/"])
        page.get_by_role("button", name="New chat").click()
        expect(page.locator("button.session")).to_have_count(1)

        send(page, "What is here?")

        fold = page.locator("details.tool")
        expect(fold.locator("summary")).to_have_text("tool: list_directory — done")
        answer = page.locator(".msg.assistant .text")
        expect(answer).to_contain_text("You asked: 'What is here?'")
        expect(page.locator(".msg.assistant .meta")).to_contain_text("demo/")
        expect(page.locator("#send")).to_be_enabled()
        expect(page.locator("#log .error-box")).to_have_count(0)
        fold.locator("summary").click()
        expect(fold.locator("pre.result")).to_contain_text("notes.txt")

        page.reload()  # the stored conversation reads back the same
        page.locator("button.session").first.click()
        expect(page.locator(".msg.user .text")).to_have_text("What is here?")
        expect(page.locator("details.tool summary")).to_have_text("tool: list_directory — done")
        expect(answer).to_contain_text("You asked: 'What is here?'")
