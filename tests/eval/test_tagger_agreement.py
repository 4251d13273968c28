import pytest

from eval.tagger_agreement import agreement, differing_companies, headlines_with_company
from finetune.models.tagger import Entity


def _company(start, end, score=0.9):
    return Entity("company_name", "x" * (end - start), start, end, score)


def test_agreement_needs_the_same_type_and_span():
    reference = [[_company(0, 5)], [_company(3, 8), Entity("date", "today", 10, 15, 0.9)], []]
    found = [[_company(0, 5)], [_company(3, 7)], [_company(0, 4)]]  # one exact, one span off, one extra
    scores = agreement(found, reference)
    assert scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(1 / 3) and (scores["entities"], scores["reference_entities"]) == (3, 3)
    assert agreement([[]], [[]])["f1"] == 0.0


def test_headlines_with_company_counts_what_the_monitor_counts():
    found = [[_company(0, 5, 0.4)], [_company(0, 5, 0.6), _company(6, 9, 0.7)], [Entity("date", "today", 0, 5, 0.9)]]
    assert headlines_with_company(found) == 1
    assert headlines_with_company(found, min_score=0.3) == 2


def test_differing_companies_lists_only_headlines_that_differ():
    texts = ["Acme up", "Beta down", "rates flat"]
    found = [[Entity("company_name", "Acme", 0, 4, 0.9)], [], []]
    reference = [[Entity("company_name", "Acme", 0, 4, 0.8)], [Entity("company_name", "Beta", 0, 4, 0.9)], []]
    assert differing_companies(texts, found, reference) == [{"text": "Beta down", "model": [], "reference": ["Beta"]}]


def test_a_missing_model_is_one_line_of_error(tmp_path, capsys):
    from eval.tagger_agreement import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nowhere"), "--json"])
    assert exit_info.value.code == 1 and "nowhere" in capsys.readouterr().err


def test_the_reference_is_the_shipped_stand_alone_tagger_unless_named(tmp_path, monkeypatch, capsys):
    from agent.shipped import NER_MODEL
    from eval.tagger_agreement import main
    from finetune.models import loading

    asked = []

    def refuse(path, **_):
        asked.append(path)
        if len(asked) % 2 == 0:
            raise ValueError("stop here")
        return object()

    monkeypatch.setattr(loading, "load_tagger", refuse)
    for argv, reference in (([], NER_MODEL), (["--reference", str(tmp_path / "other")], tmp_path / "other")):
        with pytest.raises(SystemExit):
            main([str(tmp_path / "model"), "--json", *argv])
        assert asked[-2:] == [tmp_path / "model", reference]
