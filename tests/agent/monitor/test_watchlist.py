import json

import pytest

from agent.monitor.watchlist import Watchlist, WatchlistError, load_watchlist

COMPANIES = {"companies": [{"name": "Ally Financial", "ticker": "ALLY", "aliases": ["Ally Bank"]},
                           {"name": "Ford Motor", "ticker": "F", "aliases": ["Ford"]}],
             "topics": {"layoffs": ["layoff*", "job cuts"]}}


def found(watchlist, text):
    return [(m.kind, m.key, m.text) for m in watchlist.find(text)]


def test_names_aliases_and_cashtags_match_case_insensitively():
    w = Watchlist.from_dict(COMPANIES)
    assert found(w, "$ally: ALLY FINANCIAL and ally  bank announce layoffs") == [
        ("company", "Ally Financial", "$ally"), ("company", "Ally Financial", "ALLY FINANCIAL"),
        ("company", "Ally Financial", "ally  bank"), ("topic", "layoffs", "layoffs")]


def test_bare_tickers_match_only_in_capitals_and_words_only_whole():
    w = Watchlist.from_dict(COMPANIES)
    assert found(w, "ALLY shares rise") == [("company", "Ally Financial", "ALLY")]
    assert found(w, "an ally of Fordham, allies agree") == []
    assert found(w, "$F falls; F shares") == [("company", "Ford Motor", "$F")]  # one-letter tickers only as $F


@pytest.mark.parametrize("suffix, text", [
    (".json", json.dumps(COMPANIES)),
    (".yaml", "companies:\n  - name: Ally Financial\n    ticker: ALLY\n    aliases: [Ally Bank]\n"
              "  - {name: Ford Motor, ticker: F, aliases: [Ford]}\ntopics:\n  layoffs: [layoff*, job cuts]\n"),
    (".csv", "name,ticker,aliases\nAlly Financial,ALLY,Ally Bank\nFord Motor,F,Ford\n"),
])
def test_json_yaml_and_csv_watchlists_load_the_same_companies(tmp_path, suffix, text):
    path = tmp_path / f"watch{suffix}"
    path.write_text(text)
    w = load_watchlist(path)
    assert [c.to_dict() for c in w.companies] == [
        {"name": "Ally Financial", "ticker": "ALLY", "aliases": ["Ally Bank"]},
        {"name": "Ford Motor", "ticker": "F", "aliases": ["Ford"]}]


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('{"companies": [{"ticker": "X"}]}', "company 1 needs a 'name'"),
    ('{"companies": [{"name": "A", "aliases": ["B"]}, {"name": "B"}]}', "belongs to both"),
    ('{"companies": [], "topic": {}}', "unknown watch-list keys"),
    ('{"companies": [{"name": "A", "ticker": "NOT A TICKER"}]}', "is not a ticker"),
])
def test_bad_watchlists_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "watch.json"
    path.write_text(text)
    with pytest.raises(WatchlistError, match=message):
        load_watchlist(path)


def test_missing_or_unknown_watchlist_files(tmp_path):
    with pytest.raises(WatchlistError, match="does not exist"):
        load_watchlist(tmp_path / "nope.json")
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(WatchlistError, match="use a .json"):
        load_watchlist(tmp_path / "w.txt")


def test_canonical_maps_tagger_text_to_the_watched_company():
    w = Watchlist.from_dict(COMPANIES)
    assert w.canonical("Ally Bank's") == "Ally Financial"
    assert w.canonical("$ALLY") == "Ally Financial"
    assert w.canonical("Barclays") is None
