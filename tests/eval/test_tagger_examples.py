from types import SimpleNamespace

import pytest

from eval.tagger_examples import CHAT, found, main


def test_the_chat_probes_start_from_the_ui_example_prompt():
    from ui.chat import EXAMPLES

    assert CHAT[0] in EXAMPLES and len(set(CHAT)) == len(CHAT) and all("Anna" in text for text in CHAT)


def test_each_tagger_reports_type_and_text_per_sentence():
    class Tagger:
        def __init__(self, word):
            self.word = word

        def predict(self, texts):
            return [[SimpleNamespace(type="person_name", text=self.word)] if self.word in t else [] for t in texts]

    texts = ["pay Anna", "pay Tom"]
    assert found({"a": Tagger("Anna"), "b": Tagger("Tom")}, texts) == {
        "a": [[("person_name", "Anna")], []], "b": [[], [("person_name", "Tom")]]}


@pytest.mark.slow
def test_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after the encoder's loading bar
    assert stop.value.code == 1 and last.startswith("error: ") and "nowhere" in last and "Traceback" not in err
