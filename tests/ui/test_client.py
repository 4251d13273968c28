"""The served page driven over HTTP with gradio_client, as a program would use it."""

import threading

import pytest

pytestmark = pytest.mark.slow  # builds and launches the whole page (model cards and circuit drawings)


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def test_chat_streams_the_reply_then_its_route(scripted_app):
    job = _client(scripted_app.url).submit("Hi, this is Anna", "", api_name="/chat")
    texts = [text for text, _ in job]
    text, reply = job.result()
    assert len(texts) > 2 and texts[1] == "Reply "  # the reply arrived in pieces
    assert text == "Reply 1 of this conversation."
    assert reply["route"] == "answer" and reply["intent"] == "card_arrival"
    assert reply["entities"][0]["text"] == "Anna"
    assert reply["sources"][0]["id"] == "card-arrival-001"


def test_a_session_id_continues_the_conversation(scripted_app):
    client = _client(scripted_app.url)
    _, first = client.predict("hello", "", api_name="/chat")
    text, second = client.predict("and again", first["session_id"], api_name="/chat")
    assert text == "Reply 2 of this conversation."
    assert second["session_id"] == first["session_id"]


def test_several_sessions_chat_at_once_without_mixing(scripted_app):
    results: dict[int, list[str]] = {}

    def converse(n):
        client, session, texts = _client(scripted_app.url), "", []
        for i in range(3):
            text, reply = client.predict(f"user {n} message {i}", session, api_name="/chat")
            session = reply["session_id"]
            texts.append((text, session))
        results[n] = texts

    threads = [threading.Thread(target=converse, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == [0, 1, 2]
    for texts in results.values():
        assert [t for t, _ in texts] == [f"Reply {i} of this conversation." for i in (1, 2, 3)]
        assert len({s for _, s in texts}) == 1  # one conversation per person...
    assert len({texts[0][1] for texts in results.values()}) == 3  # ...and a different one each


def test_an_empty_message_is_refused_with_a_message(scripted_app):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="the message is empty"):
        _client(scripted_app.url).predict("   ", "", api_name="/chat")


def test_the_real_assistant_streams_a_grounded_reply_with_its_route(real_app):
    job = _client(real_app.url).submit("My card hasn't arrived yet, what should I do?", "", api_name="/chat")
    texts = [text for text, _ in job]
    text, reply = job.result()
    assert len(texts) >= 2 and texts[0] == ""  # streamed: the empty start, then the reply as it grew
    assert reply["route"] == "answer" and reply["intent"] == "card_arrival"
    assert reply["sources"][0]["id"].startswith("card-arrival") and reply["sources"][0]["used"]
    assert "Track delivery" in text and text == reply["text"]


def test_with_auth_only_the_right_login_gets_in(scripted_assistant, tmp_path, serve_page):
    import httpx

    with serve_page(scripted_assistant, tmp_path, auth="alice:s3cret") as served:
        assert httpx.get(served.url + "config").status_code == 401  # the app's config stays behind the login
        from gradio_client import Client
        from gradio_client.exceptions import AuthenticationError

        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            _client(served.url)
        with pytest.raises(ValueError, match="Could not login"):
            Client(served.url, auth=("alice", "wrong"), verbose=False)
        text, _ = Client(served.url, auth=("alice", "s3cret"), verbose=False).predict("hi", "", api_name="/chat")
        assert text == "Reply 1 of this conversation."


def test_serve_loads_the_models_once_and_says_where_the_page_is(scripted_assistant, tmp_path, free_port):
    from ui.app import AppConfig
    from ui.server import ServeConfig, serve

    said, loads = [], []

    def load(say):
        say("… loading the models")
        loads.append(1)
        return scripted_assistant

    config = AppConfig(feedback_path=tmp_path / "feedback.jsonl", data_dir=tmp_path / "monitor")
    app = serve(ServeConfig(port=free_port), load, config, said.append, block=False)
    try:
        assert loads == [1]
        assert said[0] == "… loading the models"
        assert said[-1] == f"qagent web UI running at http://127.0.0.1:{free_port}/; press Ctrl+C to stop"
        text, _ = _client(f"http://127.0.0.1:{free_port}/").predict("hi", "", api_name="/chat")
        assert text == "Reply 1 of this conversation."
    finally:
        app.close()
