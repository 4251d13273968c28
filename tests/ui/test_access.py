"""With ``--auth``: a login backoff per client address, and every route but the login page behind the login.

The server tests run the real page on 127.0.0.1 and talk to it with httpx; every request loop is
bounded.
"""

from __future__ import annotations

import re

import httpx
import pytest

USER, PASSWORD = "alice", "s3cret"
# What a browser needs before logging in: the login page itself, its scripts, styles and icons,
# and the login form's target. Nothing else may answer without the session.
PUBLIC = {"/", "/login", "/login/", "/logout", "/assets/{path:path}", "/static/{path:path}", "/svelte/{path:path}",
          "/favicon.ico", "/theme.css", "/gradio_api/theme.css", "/manifest.json", "/pwa_icon", "/pwa_icon/{size}",
          "/robots.txt", "/gradio_api/login_check", "/gradio_api/login_check/",
          "/gradio_api/startup-events"}  # called by Gradio's launch itself; runs the startup events once


def _limits(**kwargs):
    from ui.access import LoginLimits

    return LoginLimits(**kwargs)


def _backoff(limits=None, clock=None):
    from ui.access import LoginBackoff

    return LoginBackoff(limits or _limits(), clock=clock or Clock())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the backoff on its own (a fake clock) --------------------------------------------------


def test_five_failures_lock_the_address_with_a_growing_delay():
    clock = Clock()
    backoff = _backoff(clock=clock)
    for _ in range(5):
        assert backoff.begin("10.0.0.1") == 0  # allowed...
        backoff.end("10.0.0.1", ok=False)  # ...and wrong
    waits = []
    for _ in range(4):
        wait = backoff.begin("10.0.0.1")
        assert wait > 0
        waits.append(wait)
        clock.now += wait  # the client waits, then fails once more
        assert backoff.begin("10.0.0.1") == 0
        backoff.end("10.0.0.1", ok=False)
    assert waits == [2.0, 4.0, 8.0, 16.0]
    assert backoff.begin("10.0.0.2") == 0  # another address is not affected


def test_the_delay_is_capped_and_old_failures_are_forgotten():
    clock = Clock()
    limits = _limits()
    backoff = _backoff(limits, clock)
    for _ in range(40):
        wait = backoff.begin("10.0.0.1")
        if wait:
            clock.now += wait
            assert backoff.begin("10.0.0.1") == 0
        backoff.end("10.0.0.1", ok=False)
    assert backoff.begin("10.0.0.1") == limits.max_lock_s
    clock.now += limits.forget_after_s + 1
    assert backoff.begin("10.0.0.1") == 0


def test_a_successful_login_resets_the_count():
    backoff = _backoff()
    for _ in range(4):
        backoff.begin("10.0.0.1")
        backoff.end("10.0.0.1", ok=False)
    backoff.begin("10.0.0.1")
    backoff.end("10.0.0.1", ok=True)
    for _ in range(4):
        assert backoff.begin("10.0.0.1") == 0
        backoff.end("10.0.0.1", ok=False)


def test_attempts_in_flight_count_so_parallel_guessing_is_limited_too():
    backoff = _backoff()
    started = [backoff.begin("10.0.0.1") for _ in range(30)]  # none has answered yet
    assert started[:5] == [0] * 5 and all(wait > 0 for wait in started[5:])


def test_the_table_of_addresses_is_bounded():
    clock = Clock()
    backoff = _backoff(_limits(max_clients=100), clock)
    for n in range(1000):
        backoff.begin(f"10.0.{n // 256}.{n % 256}")
        backoff.end(f"10.0.{n // 256}.{n % 256}", ok=False)
    assert len(backoff) <= 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_failures": 0}, "max_failures must be >= 1, got 0"),
        ({"first_lock_s": 0}, "first_lock_s must be > 0, got 0"),
        ({"first_lock_s": 10, "max_lock_s": 5}, "max_lock_s must be >= first_lock_s (10), got 5"),
        ({"max_clients": 0}, "max_clients must be >= 1, got 0"),
    ],
)
def test_bad_limits_are_refused(kwargs, message):
    with pytest.raises(ValueError) as error:
        _limits(**kwargs)
    assert str(error.value) == message


# --- a real server -------------------------------------------------------------------------


def _login(client: httpx.Client, password: str) -> httpx.Response:
    return client.post("login", data={"username": USER, "password": password})


def _routes(app) -> list[tuple[str, str]]:
    """(path, method) of every route the Gradio app mounts, routers included."""
    found = []
    for route in app.routes:
        if hasattr(route, "original_router"):  # FastAPI's included router (gradio_api/...)
            prefix = route.include_context.prefix
            found += [(prefix + inner.path, sorted(inner.methods or ["GET"])[0]) for inner in route.original_router.routes]
        else:
            found.append((route.path, sorted(getattr(route, "methods", None) or ["GET"])[0]))
    return found


@pytest.mark.slow
def test_wrong_passwords_are_answered_429_after_five(scripted_assistant, tmp_path, serve_page):
    with serve_page(scripted_assistant, tmp_path, auth=f"{USER}:{PASSWORD}") as served, \
            httpx.Client(base_url=served.url, timeout=10) as client:
        # Four wrong, then the right one: the count starts again.
        assert [_login(client, "wrong").status_code for _ in range(4)] == [400] * 4
        assert _login(client, PASSWORD).status_code == 200
        codes = [_login(client, f"guess{n}").status_code for n in range(30)]
        assert codes[:5] == [400] * 5 and set(codes[5:]) == {429}, codes
        refused = _login(client, "again")
        assert int(refused.headers["retry-after"]) >= 1
        assert "Too many failed logins" in refused.json()["detail"]
        assert _login(client, PASSWORD).status_code == 429  # even the right password waits


@pytest.mark.slow
def test_every_route_but_the_login_page_needs_the_login(guarded_app):
    app = guarded_app.app.app
    routes = _routes(app)
    assert ("/gradio_api/heartbeat/{session_hash}", "GET") in routes  # the listing sees the routers
    open_without_login = []
    with httpx.Client(base_url=guarded_app.url.rstrip("/"), timeout=5) as anonymous:
        for path, method in routes:
            if path in PUBLIC:
                continue
            url = re.sub(r"\{[^}]+\}", "x", path)
            with anonymous.stream(method, url) as response:
                if response.status_code != 401:
                    open_without_login.append(f"{method} {path}: {response.status_code}")
    assert open_without_login == []


@pytest.mark.slow
def test_heartbeat_cancel_and_reset_answer_only_with_the_login(guarded_app):
    with httpx.Client(base_url=guarded_app.url, timeout=5) as anonymous:
        with anonymous.stream("GET", "gradio_api/heartbeat/abc") as beat:
            assert beat.status_code == 401
        assert anonymous.post("gradio_api/cancel", json={"session_hash": "abc", "fn_index": 0, "event_id": "e"}).status_code == 401
        assert anonymous.post("gradio_api/reset", json={"event_id": "e"}).status_code == 401
        assert anonymous.get("").status_code == 200  # the login page itself
    with httpx.Client(base_url=guarded_app.url, timeout=5) as client:
        assert _login(client, PASSWORD).status_code == 200
        with client.stream("GET", "gradio_api/heartbeat/abc") as beat:
            assert beat.status_code == 200
        assert client.post("gradio_api/cancel", json={"session_hash": "abc", "fn_index": 0, "event_id": "e"}).json() == {"success": True}
        assert client.post("gradio_api/reset", json={"event_id": "e"}).json() == {"success": True}


@pytest.mark.slow
def test_error_responses_hide_server_paths_without_a_login_too(scripted_assistant, tmp_path, serve_page):
    with serve_page(scripted_assistant, tmp_path) as served, httpx.Client(base_url=served.url, timeout=10) as client:
        server_path = client.post("gradio_api/upload", files={"files": ("a.jsonl", b"{}")}).json()[0]
        missing = client.get(f"gradio_api/file={server_path}.gone")
        assert missing.status_code == 403 and "a.jsonl.gone" in missing.text
        assert "/tmp" not in missing.text, missing.text


@pytest.mark.slow
def test_error_responses_do_not_show_server_paths(guarded_app):
    with httpx.Client(base_url=guarded_app.url, timeout=10) as client:
        assert _login(client, PASSWORD).status_code == 200
        uploaded = client.post("gradio_api/upload", files={"files": ("feed.xml", b"<rss><channel><item><title>cut")})
        server_path = uploaded.json()[0]
        missing = client.get(f"gradio_api/file={server_path}.gone")
        assert missing.status_code == 403
        assert "/tmp" not in missing.text and server_path not in missing.text
        from gradio_client import Client, handle_file

        feed = guarded_app.folder / "feed.xml"
        feed.write_bytes(b"<rss><channel><item><title>cut")
        _, status, *_ = Client(guarded_app.url, auth=(USER, PASSWORD), verbose=False,
                               download_files=False).predict(handle_file(str(feed)), None, api_name="/score_feed")
        assert status.startswith("Could not score feed.xml: feed.xml is not well-formed XML"), status
        assert "/tmp" not in status and "gradio" not in status


@pytest.mark.slow
def test_the_login_page_does_not_describe_the_api(guarded_app):
    with httpx.Client(base_url=guarded_app.url, timeout=10) as client:
        page = client.get("")
        assert page.status_code == 200 and "window.gradio_api_info = null;" in page.text
        assert "auth_required" in page.text and "score_feed" not in page.text and "/chat" not in page.text
        assert _login(client, PASSWORD).status_code == 200
        assert "score_feed" in client.get("").text  # logged in: the whole page


def _run_event(client: httpx.Client, fn_index: int, data: list, session: str, event_data=None) -> dict:
    """Run one of the page's events as the browser does (queue/join, then the queue's event stream);
    the ``process_completed`` message."""
    import json

    joined = client.post("gradio_api/queue/join", json={"fn_index": fn_index, "data": data, "session_hash": session,
                                                        "event_data": event_data, "trigger_id": None})
    assert joined.status_code == 200, joined.text
    with client.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as events:
        for line in events.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("the event never completed")


@pytest.mark.slow
def test_the_desk_and_the_chats_person_replies_need_the_login(tmp_path, serve_page):
    from assistant_fakes import GOOD, make

    from agent.store import ConversationStore

    store = ConversationStore(tmp_path / "a.db")
    assistant, _ = make([GOOD], store=store)
    assistant.respond("I want to speak to a person please", "web-1")
    [case] = store.cases()
    with serve_page(assistant, tmp_path, auth=f"{USER}:{PASSWORD}") as served:
        fns = {fn.fn.__qualname__: index for index, fn in served.app.fns.items() if fn.fn is not None}
        desk = {name: index for name, index in fns.items() if name.startswith("DeskHandlers.")}
        assert {"DeskHandlers.refresh", "DeskHandlers.pick", "DeskHandlers.take", "DeskHandlers.reply",
                "DeskHandlers.hand_back", "DeskHandlers.resolve"} <= set(desk)
        with httpx.Client(base_url=served.url, timeout=10) as anonymous:
            for name, index in {**desk, "ChatHandlers.poll": fns["ChatHandlers.poll"]}.items():
                refused = anonymous.post("gradio_api/queue/join", json={"fn_index": index, "data": [None, None, None],
                                                                        "session_hash": "s"})
                assert refused.status_code == 401, name
        with httpx.Client(base_url=served.url, timeout=30) as client:
            assert _login(client, PASSWORD).status_code == 200
            refreshed = _run_event(client, desk["DeskHandlers.refresh"], [None, None], "desk-1")
            row = refreshed["output"]["data"][0]["data"][0]
            assert refreshed["success"] and row[0] == case.id
            _run_event(client, desk["DeskHandlers.pick"], [None], "desk-1",
                       event_data={"index": [0, 0], "value": case.id, "row_value": row})
            taken = _run_event(client, desk["DeskHandlers.take"], [None, "Mallory", None], "desk-1")
            assert taken["success"] and taken["output"]["data"][0].startswith(f"You hold case #{case.id}")
    assert store.case(case.id).held_by == USER  # with a login, the logged-in user acts, whatever name is typed
