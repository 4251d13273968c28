import pytest

from ui.messages import hide_paths


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/tmp/gradio/0a1b/feed.xml is not well-formed XML", "feed.xml is not well-formed XML"),
        ("watch-list /tmp/x/w.json: not valid JSON", "watch-list w.json: not valid JSON"),
        ("No such file or directory: '/home/me/.qagent/ui/monitor/a.db'", "No such file or directory: 'a.db'"),
        ("0 items into /tmp/q/dbs/feed-1.db", "0 items into feed-1.db"),
        ("`/srv/data/news.jsonl`", "`news.jsonl`"),
        ("see https://docs.quantum.ibm.com/a/b and dbs/x.db", "see https://docs.quantum.ibm.com/a/b and dbs/x.db"),
        ("Cards > Track delivery 1/2", "Cards > Track delivery 1/2"),
        ("up to 1.0 MB", "up to 1.0 MB"),
    ],
)
def test_server_paths_are_shown_as_file_names(text, shown):
    assert hide_paths(text) == shown
