"""The web UI in a real browser: Debian's headless Chromium driven by Playwright's Python package.

The page runs the real assistant (shipped models, knowledge base, SmolLM2), loaded once for the
test session. Screenshots go to test-artifacts/ui/ (or ``$QAGENT_TEST_ARTIFACTS/ui``).
No browser is downloaded: Playwright launches /usr/bin/chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ui.feedback import FeedbackLog

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (CI runs as root in a container), no GPU, and nothing that phones home on start.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPLY_TIMEOUT_MS = 240_000  # a CPU-only model answering on a busy 2-core machine
QUESTION = "My card hasn't arrived yet, what should I do?"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no system Chromium at {CHROMIUM}: apt-get install chromium chromium-driver (see .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@contextmanager
def opened(browser, url: str):
    """The page at ``url``, loaded; fails the test if it asked for anything beyond the local server."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    host = urlparse(url).netloc
    elsewhere: list[str] = []
    page.on("request", lambda r: elsewhere.append(r.url) if urlparse(r.url).netloc not in (host, "") else None)
    page.goto(url)
    page.wait_for_selector("#message textarea")
    yield page
    context.close()
    assert elsewhere == [], "the page must work offline"


@pytest.fixture()
def page(browser, real_app):
    with opened(browser, real_app.url) as loaded:
        yield loaded


def test_turns_ratings_and_the_trash_button_reach_the_right_conversation(browser, scripted_app):
    from playwright.sync_api import expect

    with opened(browser, scripted_app.url) as page:
        bot = page.locator("#chat [data-testid='bot']")
        for n, question in enumerate(("first question", "second question"), start=1):
            page.fill("#message textarea", question)
            page.press("#message textarea", "Enter")
            expect(bot).to_have_count(n)
            expect(bot.last).to_have_text(f"Reply {n} of this conversation.")  # the page's history came back intact
        page.locator("#chat button[aria-label='Dislike']").last.click()
        expect(page.locator("#feedback-status")).to_contain_text("Thanks")
        saved = FeedbackLog(scripted_app.folder / "feedback.jsonl").read()[-1]
        assert (saved["rating"], saved["message"], saved["turn"]) == ("down", "second question", 1)
        resets = len(scripted_app.assistant.resets)
        page.locator("#chat button[aria-label='Clear']").first.click()
        expect(bot).to_have_count(0)
        for _ in range(50):  # the reset reaches the server just after the page clears
            if len(scripted_app.assistant.resets) > resets:
                break
            page.wait_for_timeout(100)
        assert scripted_app.assistant.resets[-1] == saved["session"]


def test_a_question_gets_a_streamed_reply_with_its_route_sources_and_feedback(page, real_app, artifacts):
    from playwright.sync_api import expect

    page.fill("#message textarea", QUESTION)
    page.press("#message textarea", "Enter")
    expect(page.locator("#route-info")).to_contain_text("Route: answer", timeout=REPLY_TIMEOUT_MS)
    expect(page.locator("#route-info")).to_contain_text("card_arrival")
    sources = page.locator("#sources")
    expect(sources).to_contain_text("My card hasn't arrived yet. What should I do?")
    expect(sources).to_contain_text("used for this reply")
    reply = page.locator("#chat [data-testid='bot']").last
    expect(reply).to_contain_text("Track delivery")  # the knowledge-base fact survives the guard either way
    page.screenshot(path=str(artifacts / "chat-reply.png"), full_page=True)

    page.locator("#chat button[aria-label='Like']").first.click()
    expect(page.locator("#feedback-status")).to_contain_text("Thanks", timeout=30_000)
    saved = FeedbackLog(real_app.folder / "feedback.jsonl").read()[-1]
    assert saved["rating"] == "up" and saved["message"] == QUESTION
    assert saved["reply"]["route"] == "answer" and saved["reply"]["sources"]


def test_entities_are_highlighted_and_a_new_conversation_clears_the_chat(page, artifacts):
    from playwright.sync_api import expect

    page.get_by_text("I sent 50 pounds to Anna yesterday").click()  # an example prompt fills the box
    expect(page.locator("#message textarea")).to_have_value("I sent 50 pounds to Anna yesterday but she hasn't received it")
    page.locator("#send").click()
    entities = page.locator("#entities")
    expect(entities).to_contain_text("person_name", timeout=REPLY_TIMEOUT_MS)
    expect(entities).to_contain_text("Anna")
    expect(page.locator("#route-info")).to_contain_text("Route:", timeout=REPLY_TIMEOUT_MS)
    expect(page.locator("#route-info")).not_to_contain_text("Thinking", timeout=REPLY_TIMEOUT_MS)
    page.screenshot(path=str(artifacts / "chat-entities.png"), full_page=True)

    page.locator("#new-conversation").click()
    expect(page.locator("#chat [data-testid='bot']")).to_have_count(0)
    expect(page.locator("#route-info")).not_to_contain_text("Route:")


def test_the_monitor_tab_plots_an_uploaded_feed_and_lists_its_alert(page, tmp_path, artifacts):
    from playwright.sync_api import expect

    from agent.monitor.sample import write_sample

    sample = write_sample(tmp_path)
    page.get_by_role("tab", name="Monitor").click()
    page.set_input_files("#feed-file input[type=file]", sample["feed"])
    page.set_input_files("#watchlist-file input[type=file]", sample["watchlist"])
    page.locator("#score-feed").click()
    expect(page.locator("#monitor-status")).to_contain_text("168 scored", timeout=REPLY_TIMEOUT_MS)
    plot = page.locator("#monitor-plot img")
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.naturalWidth") > 500  # an actual picture arrived
    expect(page.locator("#monitor-alerts")).to_contain_text("Northwind Bank")
    expect(page.locator("#monitor-alerts")).to_contain_text("Northwind Bank slashes outlook")
    expect(page.locator("#monitor-totals")).to_contain_text("168 news items")
    page.screenshot(path=str(artifacts / "monitor.png"), full_page=True)


def test_an_oversized_upload_gets_a_message_on_the_page(page, tmp_path, artifacts):
    from playwright.sync_api import expect

    big = tmp_path / "huge.jsonl"
    big.write_text('{"title": "Contoso shares fall"}\n' * 40_000, encoding="utf-8")  # ~1.3 MB, the app allows 1 MB
    page.get_by_role("tab", name="Monitor").click()
    page.set_input_files("#feed-file input[type=file]", str(big))
    expect(page.get_by_text("exceed the maximum allowed size")).to_be_visible(timeout=30_000)
    page.screenshot(path=str(artifacts / "monitor-oversized.png"), full_page=True)


def test_the_models_tab_shows_metrics_and_the_head_circuits(page, artifacts):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Models").click()
    circuits = page.locator(".qa-circuit img")
    expect(circuits).to_have_count(2)  # intents and sentiment have quantum heads; the entity tagger is linear
    for i in range(2):
        expect(circuits.nth(i)).to_be_visible()
        assert circuits.nth(i).evaluate("img => img.naturalWidth") > 800
    expect(page.get_by_text("backend in use").first).to_be_visible()
    expect(page.get_by_text("The linear head of this model has no quantum circuit.")).to_be_visible()
    expect(page.get_by_text("val_macro_f1").first).to_be_visible()
    page.screenshot(path=str(artifacts / "models.png"), full_page=True)


def test_a_person_takes_over_a_handoff_on_the_desk_and_hands_it_back(browser, real_app, artifacts):
    """Two browsers: a customer asks for a person; someone on the Desk takes the case and replies;
    the assistant stays silent until the case is handed back, then answers again."""
    from playwright.sync_api import expect

    from agent.assistant import Assistant

    def send(page, text: str) -> None:
        # The page shows the message and "Thinking…" together; the panel still holds the last turn's
        # route until then, so wait for the message first, or a check could read the previous turn.
        sent = page.locator("#chat [data-testid='user']")
        before = sent.count()
        page.fill("#message textarea", text)
        page.press("#message textarea", "Enter")
        expect(sent).to_have_count(before + 1, timeout=REPLY_TIMEOUT_MS)
        expect(page.locator("#route-info")).not_to_contain_text("Thinking", timeout=REPLY_TIMEOUT_MS)
        expect(page.locator("#route-info")).to_contain_text("Route:", timeout=REPLY_TIMEOUT_MS)

    with opened(browser, real_app.url) as customer, opened(browser, real_app.url) as desk:
        bot = customer.locator("#chat [data-testid='bot']")
        send(customer, "I want to speak to a real person")
        expect(customer.locator("#route-info")).to_contain_text("handoff")
        expect(bot.last).to_contain_text("Your case number is")
        case_id = int(re.search(r"case number is (\d+)", bot.last.inner_text()).group(1))

        desk.get_by_role("tab", name="Desk").click()
        desk.fill("#desk-name textarea", "Dana")
        desk.locator("#desk-refresh").click()
        cases = desk.locator("#desk-cases")
        expect(cases).to_contain_text("I want to speak to a real person", timeout=30_000)
        cases.get_by_role("gridcell").filter(has_text="I want to speak to a real person").first.click()
        expect(desk.locator("#desk-case")).to_contain_text(f"Case #{case_id}")
        expect(desk.locator("#desk-transcript")).to_contain_text("I want to speak to a real person")
        expect(desk.locator("#desk-details")).to_contain_text("the customer asked for a person")
        desk.locator("#desk-take").click()
        expect(desk.locator("#desk-status")).to_contain_text(f"You hold case #{case_id}")
        desk.fill("#desk-reply textarea", "Hello, I'm Dana from the team. I'm checking your card now.")
        desk.locator("#desk-send").click()
        expect(desk.locator("#desk-status")).to_contain_text("Sent")

        # The customer's page shows the reply by itself (no message needed), marked as from a person.
        expect(bot.last).to_contain_text("Team (Dana): Hello, I'm Dana from the team.", timeout=30_000)
        expect(bot.last.locator("strong")).to_have_text("Team (Dana):")
        customer.screenshot(path=str(artifacts / "chat-person-reply.png"), full_page=True)

        # Held: the assistant runs no model; it says once that a person will answer, then nothing.
        send(customer, "Thanks! Is it on its way?")
        expect(customer.locator("#route-info")).to_contain_text("a person (Dana) holds this conversation")
        expect(bot.last).to_have_text(Assistant.HELD_NOTICE)
        replies = bot.count()
        send(customer, "Hello?")
        expect(customer.locator("#chat [data-testid='user']").last).to_have_text("Hello?")
        # No reply from the assistant: the empty bubble shown while the turn ran is gone again.
        expect(bot).to_have_count(replies, timeout=REPLY_TIMEOUT_MS)
        # The desk sees the customer's new messages without a click (it refreshes itself).
        expect(desk.locator("#desk-transcript")).to_contain_text("Hello?", timeout=30_000)
        desk.screenshot(path=str(artifacts / "desk.png"), full_page=True)

        desk.locator("#desk-handback").click()
        expect(desk.locator("#desk-status")).to_contain_text("The assistant answers")
        send(customer, QUESTION)
        expect(customer.locator("#route-info")).to_contain_text("Route: answer")
        expect(bot.last).to_contain_text("Track delivery")
        assert real_app.assistant.store.case(case_id).status == "assigned"  # still Dana's to resolve
        desk.locator("#desk-resolve").click()
        expect(desk.locator("#desk-status")).to_contain_text(f"Case #{case_id} is resolved.")
