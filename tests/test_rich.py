"""Issue 16: rich output from the remote side, in the cell that caused it and in order.

display(), plots, progress bars, logging and top-level await, through a
real kernel against a stock rpyc_classic.
"""

import base64
import textwrap

import pytest

from jupyter_rsym.kernel.config import RSym
from jupyter_rsym.link.address import parse_address
from jupyter_rsym.link.session import RemoteSession
from tests.servers import ClassicServer

from .harness import KernelHarness
from .waits import wait_until

PNG = b"\x89PNG\r\n\x1a\n"


def kinds(cell):
    """The cell's outputs in order, displays and results as their mime types."""
    return [(kind, sorted(data) if isinstance(data, dict) else data) for kind, data in cell.rendered]


def png_of(data):
    return base64.b64decode(data["image/png"])


def remote(code):
    return "%%remote\n" + textwrap.dedent(code).strip("\n")


def test_attach_imports_no_optional_library():
    """What a fresh remote has imported right after a session attached: nothing it lacked."""
    with ClassicServer() as server:
        session = RemoteSession.connect("r", parse_address(server.address, 18812), RSym())
        try:
            loaded = session.eval(
                "sorted(m for m in __import__('sys').modules "
                "if m.split('.')[0] in ('IPython', 'matplotlib', 'tqdm', 'pandas'))"
            )
            assert list(loaded) == []
            assert session.eval("'rpyc' in __import__('sys').modules")  # and the probe itself works
        finally:
            session.close()


def test_display_keeps_its_place_between_prints(connected):
    cell = connected.ok(
        remote("""
        import sys
        print('a')
        display('plain')
        from IPython.display import HTML, display as ipython_display
        ipython_display(HTML('<b>b</b>'))
        print('c', file=sys.stderr)
        handle = display(HTML('<i>1</i>'), display_id=True)
        print('d')
        handle.update(HTML('<i>2</i>'))
        'last'
    """)
    )
    assert cell.outputs == [
        ("stdout", "a\n"),
        ("display", {"text/plain": "'plain'"}),
        ("display", {"text/html": "<b>b</b>", "text/plain": "<IPython.core.display.HTML object>"}),
        ("stderr", "c\n"),
        ("display", {"text/html": "<i>2</i>", "text/plain": "<IPython.core.display.HTML object>"}),
        ("stdout", "d\n"),
        ("result", {"text/plain": "'last'"}),
    ]
    # the update went to the same output, by its id
    (update,) = cell.of_type("update_display_data")
    (first, *_) = [m for m in cell.of_type("display_data") if "<i>" in m["content"]["data"].get("text/html", "")]
    assert update["content"]["transient"] == first["content"]["transient"]
    assert connected.ok("%remote 1 + 1").result["text/plain"] == "2"


def test_a_second_session_on_the_same_server_keeps_plots_working(connected, classic_server):
    """pyplot is adapted once per process: a second session attaching to a server
    whose pyplot is already adapted must not adapt it again (plt.show() recursed)."""
    connected.ok("%%remote\nimport matplotlib.pyplot as plt")
    connected.ok(f"%rconnect {classic_server.address} --as second")
    try:
        for name in ("second", "r"):
            cell = connected.ok(
                f"%%remote --on {name}\nimport matplotlib.pyplot as plt\n"
                "plt.figure(); plt.plot([1, 2])\nplt.show()\nprint('shown')"
            )
            assert kinds(cell) == [("display", ["image/png", "text/plain"]), ("stdout", "shown\n")], name
    finally:
        connected.ok("%rdisconnect second")


def test_every_rich_representation_is_computed_remotely(connected):
    cell = connected.ok(
        remote("""
        class Rich:
            def _repr_mimebundle_(self, include=None, exclude=None):
                return {'text/html': '<p>bundle</p>'}, {'text/html': {'isolated': True}}
            def _repr_markdown_(self):
                return '**md**'
            def _repr_latex_(self):
                return '$x$'
            def _repr_json_(self):
                return {'k': [1, 2]}
            def _repr_svg_(self):
                return '<svg></svg>'
            def _repr_png_(self):
                return b'\\x89PNG-bytes', {'width': 10}
            def __repr__(self):
                return 'Rich()'
        class Broken:
            def _repr_html_(self):
                raise ValueError('no html')
            def __repr__(self):
                raise RuntimeError('no repr either')
        display(Rich())
        display(Broken())
    """)
    )
    (rich, broken) = cell.displays
    assert rich == {
        "text/html": "<p>bundle</p>",
        "text/markdown": "**md**",
        "text/latex": "$x$",
        "application/json": {"k": [1, 2]},
        "image/svg+xml": "<svg></svg>",
        "image/png": base64.b64encode(b"\x89PNG-bytes").decode(),
        "text/plain": "Rich()",
    }
    metadata = cell.of_type("display_data")[0]["content"]["metadata"]
    assert metadata == {"text/html": {"isolated": True}, "image/png": {"width": 10}}
    assert broken == {"text/plain": "<unrepresentable Broken: no repr either>"}


def test_display_from_a_remote_call_and_a_remote_thread(connected):
    connected.ok(
        remote("""
        import threading, time
        def show(tag):
            display(f'shown {tag}')
        def later(tag):
            time.sleep(0.5)
            show(tag)
    """)
    )
    called = connected.ok("r.namespace['show']('by call')")
    assert called.displays == [{"text/plain": "'shown by call'"}]
    starter = connected.ok("%%remote\nthreading.Thread(target=later, args=('late',)).start()")
    other = connected.ok("import time\ntime.sleep(1.2)\nprint('other cell')")
    starter.wait_for(lambda c: c.displays, 10, "the late display")
    assert starter.displays == [{"text/plain": "'shown late'"}]
    assert other.outputs == [("stdout", "other cell\n")]


def test_clear_output_and_raw_display(connected):
    cell = connected.ok(
        remote("""
        from IPython.display import clear_output
        print('gone')
        clear_output()
        display({'text/html': '<u>raw</u>', 'text/plain': 'raw'}, raw=True)
    """)
    )
    assert cell.outputs == [("display", {"text/html": "<u>raw</u>", "text/plain": "raw"})]


def test_plots_show_at_cell_end_at_show_and_as_value(connected):
    cell = connected.ok(
        remote("""
        import matplotlib.pyplot as plt
        plt.plot([1, 3, 2])
        print('plotted')
    """)
    )
    assert kinds(cell) == [("stdout", "plotted\n"), ("display", ["image/png", "text/plain"])]
    assert png_of(cell.displays[0]).startswith(PNG)
    assert cell.displays[0]["text/plain"].startswith("<Figure size")

    cell = connected.ok(
        remote("""
        plt.figure(); plt.plot([1, 2])
        print('before')
        plt.show()
        print('after')
    """)
    )
    assert kinds(cell) == [("stdout", "before\n"), ("display", ["image/png", "text/plain"]), ("stdout", "after\n")]

    cell = connected.ok(
        remote("""
        fig, ax = plt.subplots()
        ax.bar([1, 2], [3, 4])
        print(type(fig.canvas).__name__)  # Agg, whatever the process's backend
        fig
    """)
    )
    assert kinds(cell) == [
        ("stdout", "FigureCanvasAgg\n"),
        ("result", ["image/png", "text/plain"]),
    ]  # once, as the value
    assert png_of(cell.result).startswith(PNG)
    # figures are closed after they show
    assert connected.ok("%remote plt.get_fignums()").result["text/plain"] == "[]"
    # a figure from a remote call shows as an image too
    cell = connected.ok("r.modules['matplotlib.figure'].Figure(figsize=(2, 2))")
    assert sorted(cell.result) == ["image/png", "text/plain"]


def test_progress_ends_as_one_line_in_order(connected):
    cell = connected.ok(
        remote("""
        import sys, time
        print('start')
        for i in range(1, 6):
            print(f'\\r{i}/5', end='', file=sys.stderr)
            time.sleep(0.07)  # a batch each
        print('done')
    """)
    )
    assert cell.rendered == [("stdout", "start\n"), ("stderr", "5/5"), ("stdout", "done\n")]

    cell = connected.ok(
        remote("""
        from tqdm import tqdm
        for i in tqdm(range(4), desc='steps'):
            time.sleep(0.05)
        print('finished')
    """)
    )
    (progress, finished) = cell.rendered
    assert progress[0] == "stderr" and progress[1].count("\n") == 1
    assert progress[1].startswith("steps: 100%") and "4/4" in progress[1]
    assert finished == ("stdout", "finished\n")


def test_tqdm_in_a_remote_thread_updates_the_starting_cell(connected):
    starter = connected.ok(
        remote("""
        import threading, time
        from tqdm import tqdm
        def work():
            for i in tqdm(range(5), desc='bg'):
                time.sleep(0.1)
            print('bg done')
        threading.Thread(target=work).start()
    """)
    )
    other = connected.ok("import time\ntime.sleep(1.0)\nprint('meanwhile')")
    starter.wait_for(lambda c: "bg done" in c.stdout, 10, "the thread's end")
    (progress, done) = starter.rendered
    assert progress[0] == "stderr" and progress[1].startswith("bg: 100%") and progress[1].count("\n") == 1
    assert done == ("stdout", "bg done\n")
    assert other.outputs == [("stdout", "meanwhile\n")]


def test_logging_lands_in_the_cell_not_on_the_server_terminal(connected, classic_server, tmp_path):
    logfile = tmp_path / "remote.log"
    cell = connected.ok(
        remote(f"""
        import logging
        file_handler = logging.FileHandler({str(logfile)!r})
        logging.getLogger('lab').addHandler(file_handler)
        logging.getLogger('lab').warning('careful-%d', 1)
        logging.getLogger('lab').info('routine-%d', 2)
        logging.warning('root-%d', 3)
        file_handler.close()
        logging.getLogger('lab').removeHandler(file_handler)
    """)
    )
    assert cell.stdout == ""
    lines = cell.stderr.splitlines()
    assert len(lines) == 2, cell.stderr
    assert lines[0].endswith(": careful-1") and "WARNING lab" in lines[0]  # the server's format
    assert lines[1].endswith(": root-3")
    assert logfile.read_text() == "careful-1\nroutine-2\n"  # file handlers untouched
    # a last record below RSym.log_level: once it reached the terminal, all before it did
    connected.ok("%remote __import__('logging').getLogger('lab').info('after-%d', 4)")
    classic_server.wait_for_log("after-4")
    log = "".join(classic_server.log)
    assert "careful-1" not in log and "root-3" not in log  # not duplicated on the terminal
    assert "routine-2" in log  # below RSym.log_level: stays on the terminal


def test_log_level_setting_lets_quieter_records_into_the_cell(connected, classic_server):
    """``RSym.log_level`` changed (read at connect): INFO records show in the cell."""
    connected.ok(f"%config RSym.log_level = 'INFO'\n%rconnect {classic_server.address} --as chatty")
    try:
        cell = connected.ok(
            remote("""
            import logging
            logging.getLogger('lab').info('detail-%d', 5)
            logging.getLogger('lab').debug('noise-%d', 6)
        """).replace("%%remote", "%%remote --on chatty")
        )
        lines = cell.stderr.splitlines()
        assert len(lines) == 1 and lines[0].endswith(": detail-5") and "INFO lab" in lines[0], cell.stderr
    finally:
        connected.ok("%rdisconnect chatty\n%config RSym.log_level = 'WARNING'")
    # the session connected before keeps its level
    assert connected.ok("%remote __import__('logging').getLogger('lab').info('quiet-%d', 7)").stderr == ""


def test_top_level_await(connected):
    cell = connected.ok(
        remote("""
        import asyncio
        await asyncio.sleep(0.01)
        queue = asyncio.Queue()
        await queue.put(21)
        print('awaited')
        (await queue.get()) * 2
    """)
    )
    assert cell.outputs == [("stdout", "awaited\n"), ("result", {"text/plain": "42"})]
    # the loop lives on: the next cell awaits on objects of the last one
    assert connected.ok("%%remote\nawait queue.put(1)\nawait queue.get()").result["text/plain"] == "1"
    cell = connected.run(
        remote("""
        async def fails():
            raise ValueError('async bad')
        await fails()
    """)
    )
    assert (cell.error["ename"], cell.error["evalue"]) == ("ValueError", "async bad")
    text = cell.error_text
    assert "await fails()" in text and "raise ValueError('async bad')" in text
    assert "asyncio" not in text and "agent" not in text and "cells.py" not in text


@pytest.fixture
def bare_remote(tmp_path):
    """A kernel connected to a stock server whose Python has no IPython and no matplotlib."""
    blocked = tmp_path / "blocked"
    for name in ("IPython", "matplotlib"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f'raise ImportError("No module named {name!r}")\n')
    import os

    env = {**os.environ, "PYTHONPATH": str(blocked)}
    with ClassicServer(env=env) as server:
        harness = KernelHarness()
        try:
            harness.ok("%load_ext jupyter_rsym")
            harness.ok(f"%rconnect {server.address}")
            yield harness
        finally:
            harness.shutdown()


def test_display_without_ipython_or_matplotlib_on_the_remote(bare_remote):
    cell = bare_remote.ok(
        remote("""
        class Card:
            def _repr_html_(self):
                return '<b>card</b>'
        print('a')
        display(Card())
        try:
            import matplotlib
        except ImportError:
            print('no matplotlib')
        try:
            import IPython
        except ImportError:
            print('no IPython')
        handle = display('v1', display_id='fixed')
        handle.update('v2')
    """)
    )
    assert [k for k, _ in cell.outputs] == ["stdout", "display", "stdout", "display"]
    assert cell.outputs[0] == ("stdout", "a\n")
    assert cell.outputs[1][1]["text/html"] == "<b>card</b>"
    assert cell.outputs[2] == ("stdout", "no matplotlib\nno IPython\n")
    assert cell.outputs[3] == ("display", {"text/plain": "'v2'"})
    assert bare_remote.ok("%remote 6 * 7").result["text/plain"] == "42"


SERVER_WITH_ITS_OWN_PLOTS = """
import sys, threading
from IPython.display import display as server_display  # imported before any notebook comes
import matplotlib
matplotlib.use('svg')
import matplotlib.pyplot as plt
own = plt.figure()  # the server's own figure, made before any notebook comes
def draw_later():
    import time
    time.sleep(1.5)
    global later
    later = plt.figure()
threading.Thread(target=draw_later, daemon=True).start()
sys.modules['server_plots'] = sys.modules[__name__]
from rpyc.cli.rpyc_classic import main
sys.exit(main())
"""


def test_server_own_ipython_and_matplotlib_are_untouched(kernel):
    server = ClassicServer()
    server._args[1:3] = ["-c", SERVER_WITH_ITS_OWN_PLOTS]
    with server:
        kernel.ok("%load_ext jupyter_rsym")
        kernel.ok(f"%rconnect {server.address} --as srv")
        cell = kernel.ok("%%remote --on srv\nimport matplotlib.pyplot as plt\nlines = plt.plot([1, 2])")
        assert kinds(cell) == [("display", ["image/png", "text/plain"])]
        # IPython was imported before the agent came: its display routes all the same
        cell = kernel.ok("%%remote --on srv\nfrom IPython.display import display as d, HTML\nd(HTML('<p>x</p>'))")
        assert kinds(cell) == [("display", ["text/html", "text/plain"])]
        wait_until(
            lambda: (
                kernel.ok("%remote --on srv hasattr(__import__('server_plots'), 'later')").result["text/plain"]
                == "True"
            ),
            what="the server's own later figure",
        )
        check = kernel.ok(
            "%remote --on srv (plt.get_backend(), plt.get_fignums(), "
            "type(__import__('server_plots').own.canvas).__name__, "
            "type(__import__('server_plots').later.canvas).__name__)"
        )
        assert check.result["text/plain"] == "('svg', [1, 2], 'FigureCanvasSVG', 'FigureCanvasSVG')"
        kernel.ok("%rdisconnect srv")


def test_displays_travel_batched_with_the_prints(connected):
    before = int(connected.ok("print(r.output_batches)").stdout)
    cell = connected.ok("%%remote\nfor i in range(300):\n    print('row', i)\n    display(i)")
    assert len(cell.displays) == 300 and cell.stdout.count("\n") == 300
    # in order, one after the other
    assert [d for _, d in cell.outputs[:4]] == ["row 0\n", {"text/plain": "0"}, "row 1\n", {"text/plain": "1"}]
    batches = int(connected.ok("print(r.output_batches)").stdout) - before
    assert batches < 30, batches  # not a round trip per display (600 outputs)


def test_rich_output_through_our_own_server(kernel, rsym_server):
    """jupyter-rsym serve imports the agent itself: displays, figures and input() work the same."""
    kernel.ok("%load_ext jupyter_rsym")
    kernel.ok(f"%rconnect {rsym_server.address} --token {rsym_server.token} --as ours")
    try:
        cell = kernel.ok(
            "%%remote --on ours\nimport matplotlib.pyplot as plt\nprint('a')\n"
            "display('shown')\nlines = plt.plot([1, 2])"
        )
        assert kinds(cell) == [("stdout", "a\n"), ("display", ["text/plain"]), ("display", ["image/png", "text/plain"])]
        cell = kernel.submit("%%remote --on ours\ninput('ours? ')", allow_stdin=True)
        assert kernel.answer("yes")["parent"] == cell.msg_id
        assert cell.wait().assert_ok().result["text/plain"] == "'yes'"
    finally:
        kernel.ok("%rdisconnect ours")
