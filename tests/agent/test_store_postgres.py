"""The conversation store against a real PostgreSQL server.

Uses ``$QAGENT_TEST_POSTGRES_URL`` when set; otherwise starts a throwaway cluster with Debian's
``postgresql`` binaries (``initdb``/``pg_ctl`` under /usr/lib/postgresql/*/bin) in a temporary
folder, listening on 127.0.0.1 on a free port (as the ``postgres`` user when run as root, since
postgres refuses to run as root), and skips saying why when that cannot be done.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from datetime import datetime, timedelta, timezone

import pytest

from agent.store import ConversationStore
from assistant_fakes import GOOD, make

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    if os.environ.get("QAGENT_TEST_POSTGRES_URL"):
        yield os.environ["QAGENT_TEST_POSTGRES_URL"]
        return
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL binaries not found (apt-get install postgresql, or set QAGENT_TEST_POSTGRES_URL)")
    bindir = os.path.dirname(found[-1])
    prefix: list[str] = []
    folder = tempfile.mkdtemp(prefix="qagent-pg-")
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        shutil.chown(folder, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(folder, "data"), _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip(f"could not start PostgreSQL ({args[0]}): {(done.stderr or done.stdout).strip()[:300]}")

    run(f"{bindir}/initdb", "-D", data, "-U", "qagent", "--auth=trust", "-E", "UTF8", "--no-sync")
    run(f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(folder, "log"), "-w", "-o",
        f"-p {port} -h 127.0.0.1 -k {folder} -F", "start")
    try:
        yield f"postgresql+psycopg://qagent@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_store_works_on_postgresql(postgres_url):
    store = ConversationStore(postgres_url)
    assistant, _ = make([GOOD], store=store)
    assistant.respond("where is my card? 4111 1111 1111 1111", "pg-alice")
    reply = assistant.respond("I want to speak to a person please", "pg-alice")
    [case] = [c for c in store.cases(("open",)) if c.session_id == "pg-alice"]
    assert f"case number is {case.id}" in reply.text
    assert "4111 1111" not in " ".join(t.text for t in store.turns("pg-alice"))

    restarted, _ = make([GOOD], store=ConversationStore(postgres_url))
    restarted.respond("hello", "pg-alice")
    assert len(restarted.memory.turns("pg-alice")) == 3

    store.reply_to_case(case.id, "On it")
    assert restarted.pending_replies("pg-alice") == ["On it"]

    def talk(name: str) -> None:
        for i in range(5):
            store.add_turn(name, "customer", str(i))

    threads = [threading.Thread(target=talk, args=(f"pg-t{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(store.turns(f"pg-t{n}")) == 5 for n in range(3))

    later = datetime.now(timezone.utc) + timedelta(days=1)
    deleted, kept = store.purge(later)
    assert kept == 1 and deleted >= 3 and len(store.turns("pg-alice")) == 4
    restarted.store.close()
    store.close()


def test_taking_and_handing_back_a_case_on_postgresql(postgres_url):
    store = ConversationStore(postgres_url)
    assistant, _ = make([GOOD], store=store)
    assistant.respond("this is useless, I want to speak to a person please", "pg-held")
    [case] = [c for c in store.desk_cases() if c.session_id == "pg-held"]
    taken = store.take_case(case.id, "Dana")
    assert (taken.status, taken.assignee, taken.held_by) == ("assigned", "Dana", "Dana")
    with pytest.raises(ValueError, match="held by Dana"):
        store.take_case(case.id, "Eli")
    assert assistant.respond("where is my card?", "pg-held").text == assistant.HELD_NOTICE
    assert assistant.respond("hello?", "pg-held").text == ""
    store.reply_to_case(case.id, "Dana here, looking now", person="Dana")
    assert [(t.text, t.author) for t in store.pending_person_turns("pg-held")] == [("Dana here, looking now", "Dana")]
    back = store.hand_back(case.id)
    assert (back.status, back.held_by) == ("assigned", None) and store.held_by("pg-held") is None
    assert assistant.respond("where is my card?", "pg-held").route == "answer"
    assert store.set_status(case.id, "resolved").status == "resolved"
    assert case.id not in [c.id for c in store.desk_cases()]
    store.close()


def test_a_version_1_store_on_postgresql_is_migrated_in_place(postgres_url):
    import sqlalchemy as sa
    from store_v1 import SESSION, write_v1_store

    server = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS qagent_v1"))
        conn.execute(sa.text("CREATE DATABASE qagent_v1"))
    server.dispose()
    url = postgres_url.rsplit("/", 1)[0] + "/qagent_v1"
    write_v1_store(url)
    store = ConversationStore(url)
    assert len(store.turns(SESSION)) == 3
    [case] = store.cases()
    assert store.take_case(case.id, "Dana").held_by == "Dana"
    store.close()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select value from qagent_store where key='schema_version'")).scalar() == "2"
    engine.dispose()
