"""Issue 26, part 1: a notebook function called by remote work that a cell
caused (a pool job, a thread, an executor job, an asyncio task) prints into
that cell, not into the cell that handed it over; work no cell caused still
goes to the handing cell."""

import pytest

SAY = "def say(tag):\n    print('said', tag)\n    return tag\n"
FAIL = "def fail(tag):\n    raise ValueError(f'bad {tag}')\n"

CASES = {
    "pool submit": "from concurrent.futures import ThreadPoolExecutor\n"
    "with ThreadPoolExecutor(2) as pool:\n    done = pool.submit(say, 'pool').result()\n",
    "pool map": "from concurrent.futures import ThreadPoolExecutor\n"
    "with ThreadPoolExecutor(2) as pool:\n    done = list(pool.map(say, ['map']))\n",
    "thread": "import threading\nt = threading.Thread(target=say, args=('thread',))\nt.start(); t.join()\n",
    "executor": "import asyncio\nasync def main():\n"
    "    return await asyncio.get_running_loop().run_in_executor(None, say, 'executor')\n"
    "done = asyncio.run(main())\n",
    "task": "import asyncio\nasync def job():\n    return say('task')\n"
    "async def main():\n    return await asyncio.create_task(job())\ndone = asyncio.run(main())\n",
}


@pytest.fixture(scope="module", params=["classic", "rsym"])
def session(request, kernel, classic_server, rsym_server):
    kernel.ok("%reload_ext jupyter_rsym")
    if request.param == "classic":
        kernel.ok(f"%rconnect {classic_server.address} --as follow")
    else:
        kernel.ok(f"%rconnect {rsym_server.address} --token {rsym_server.token} --as follow")
    kernel.ok(SAY + FAIL)
    yield kernel
    kernel.ok("%rdisconnect follow")


@pytest.mark.parametrize("case", CASES)
def test_callback_from_work_a_cell_caused_prints_in_that_cell(session, case):
    handing = session.ok("%rpush say --ref --on follow")
    caller = session.ok(f"%%remote --on follow\n{CASES[case]}print('remote print')")
    tag = CASES[case].split("'")[-2] if case != "task" else "task"
    assert caller.stdout.count(f"said {tag}\n") == 1, caller.summary()
    assert "remote print\n" in caller.stdout
    assert handing.stdout == ""


def test_work_started_by_one_cell_prints_there_after_it_finished(session):
    session.ok("%rpush say --ref --on follow")
    starter = session.ok(
        "%%remote --on follow\nimport threading\ngo = threading.Event()\n"
        "threading.Thread(target=lambda: go.wait(30) and say('late')).start()"
    )
    other = session.ok("%remote --on follow go.set()")
    starter.wait_for(lambda c: "said late" in c.stdout, 10, "the late callback")
    assert starter.stdout == "said late\n"
    assert other.stdout == ""


def test_error_of_a_callback_from_cell_work_shows_in_that_cell(session):
    session.ok("%rpush fail --ref --on follow")
    caller = session.ok(
        "%%remote --on follow\nimport threading\ncaught = []\n"
        "def run():\n    try:\n        fail('worker')\n    except ValueError as e:\n"
        "        caught.append(type(e).__name__)\n"
        "t = threading.Thread(target=run); t.start(); t.join()\nprint(caught)"
    )
    assert "ValueError: bad worker" in caller.stderr  # shown: no cell waited on that call
    assert "['ValueError']" in caller.stdout  # and the remote caller got it too


def test_work_no_cell_caused_still_goes_to_the_handing_cell(session):
    # a thread working for nobody (as the server's own): started in an empty context
    session.ok(
        "%%remote --on follow\nimport threading, contextvars\n"
        "mailbox = []\nwake = threading.Event()\n"
        "def server_loop():\n    while wake.wait(30):\n        wake.clear()\n"
        "        for f in mailbox:\n            f('nobody')\n"
        "ctx = contextvars.Context()\n"  # an empty context: no route, like a server thread
        "ctx.run(lambda: threading.Thread(target=server_loop, daemon=True).start())"
    )
    handing = session.ok("def tell(tag):\n    print('told', tag)\n%rpush tell --ref --on follow")
    session.ok("%remote --on follow mailbox.append(tell) or wake.set()")
    handing.wait_for(lambda c: "told nobody" in c.stdout, 10, "the callback of unrouted work")
    assert handing.stdout == "told nobody\n"
