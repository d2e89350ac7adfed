"""Issue 3: every callback's and remote thread's output lands in the cell that caused it."""

import pytest

SAY = "def say(tag):\n    print('said', tag)\n    return tag\n"


@pytest.fixture(scope="module", autouse=True)
def setup(connected):
    connected.ok(SAY)


def test_timer_callback_lands_in_handing_cell_while_another_runs(connected):
    a = connected.ok("r.modules.threading.Timer(0.5, say, ['A']).start()")
    b = connected.ok("import time\ntime.sleep(2)\nprint('B done')")
    a.wait_for(lambda c: "said A" in c.stdout, 10, "timer output")
    assert a.stdout == "said A\n"
    assert b.stdout == "B done\n"


def test_timer_callback_reaches_its_cell_while_kernel_idle(connected):
    a = connected.ok("r.modules.threading.Timer(0.5, say, ['idle']).start()")
    # nothing else runs: the kernel is idle when the timer fires
    a.wait_for(lambda c: "said idle" in c.stdout, 10, "timer output while idle")
    assert a.stdout == "said idle\n"


def test_sync_call_of_stored_callback_goes_to_calling_cell(connected):
    a = connected.ok("r.namespace['stored'] = say")
    b = connected.ok("%remote stored('B')")
    assert b.stdout == "said B\n"
    assert b.result["text/plain"] == "'B'"
    assert a.stdout == ""


def test_callback_during_long_remote_call_goes_to_handing_cell(connected):
    a = connected.ok("r.modules.threading.Timer(0.5, say, ['A-during-B']).start()")
    b = connected.ok("%remote __import__('time').sleep(2) or 'slept'")
    a.wait_for(lambda c: "said A-during-B" in c.stdout, 10, "timer output")
    assert b.stdout == ""
    assert b.result["text/plain"] == "'slept'"
    assert a.stdout == "said A-during-B\n"


def test_remote_thread_output_after_cell_finished(connected):
    a = connected.ok(
        "%%remote\nimport threading, time\n"
        "def ticker():\n    for i in range(3):\n        time.sleep(0.3)\n        print('tick', i)\n"
        "threading.Thread(target=ticker).start()\nprint('started')"
    )
    b = connected.ok("import time\ntime.sleep(0.5)\nprint('B')")
    a.wait_for(lambda c: "tick 2" in c.stdout, 10, "ticks")
    assert a.stdout == "started\ntick 0\ntick 1\ntick 2\n"
    assert b.stdout == "B\n"


def test_display_and_exception_in_async_callback(connected):
    connected.ok(
        "from IPython.display import display, HTML\n"
        "def shows(x):\n    display(HTML(f'<i>{x}</i>'))\n"
        "def fails(x):\n    raise ValueError(f'bad {x}')\n"
    )
    connected.ok(
        "%%remote\nimport threading\nresults = []\n"
        "def call(f, x):\n    try:\n        results.append(f(x))\n"
        "    except Exception as e:\n        results.append(type(e).__name__ + ': ' + str(e))\n"
    )
    a = connected.ok(
        "r.modules.threading.Timer(0.3, r.namespace['call'], [shows, 1]).start()\n"
        "r.modules.threading.Timer(0.3, r.namespace['call'], [fails, 2]).start()"
    )
    b = connected.ok("import time\ntime.sleep(1.5)")
    a.wait_for(lambda c: c.displays and "ValueError" in c.stderr, 10, "display and error")
    assert a.displays[0]["text/html"] == "<i>1</i>"
    assert "ValueError: bad 2" in a.stderr and "raise ValueError" in a.stderr
    assert b.displays == [] and b.stderr == ""
    # the remote caller received the exception
    results = connected.ok("%remote sorted(map(str, results))").result["text/plain"]
    assert "ValueError: bad 2" in results


def test_stress_many_threads_many_cells(connected):
    cells = []
    for k in range(4):
        connected.ok(f"def cb{k}(i):\n    print('cb{k}', i)")
        cells.append(connected.ok(f"r.namespace['cb{k}'] = cb{k}"))
    connected.ok(
        "%%remote\nimport contextvars, threading\n"
        "def hammer(n_threads=20, n_calls=200):\n"
        "    cbs = [cb0, cb1, cb2, cb3]\n"
        "    def work(t):\n"
        "        for i in range(n_calls):\n"
        "            cbs[t % 4](t * 1000 + i)\n"
        "    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]\n"
        # started in an empty context: work no cell caused, as a server's own
        # threads; their callbacks go to the cells that handed each over
        "    for t in threads: contextvars.Context().run(t.start)\n"
        "    for t in threads: t.join()\n"
        "    return 'done'\n"
    )
    fifth = connected.ok("%remote hammer()", timeout=120)
    assert fifth.result["text/plain"] == "'done'"
    assert fifth.stdout == ""
    for k, cell in enumerate(cells):
        expected = sorted(f"cb{k} {t * 1000 + i}" for t in range(k, 20, 4) for i in range(200))
        count = len(expected)
        cell.wait_for(lambda c, n=count: c.stdout.count("\n") >= n, 30, f"cb{k} lines")
        lines = cell.stdout.splitlines()
        assert sorted(lines) == expected  # each exactly once, nothing foreign
        # per remote thread, lines arrive in the order they were made
        for t in range(k, 20, 4):
            mine = [int(line.split()[1]) for line in lines if int(line.split()[1]) // 1000 == t]
            assert mine == sorted(mine)
    assert connected.ok("%remote 1 + 1").result["text/plain"] == "2"
