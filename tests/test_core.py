"""Issue 2 core slice: the tutorial example, %%remote, -i/-o, %remote, errors."""

import re

TUTORIAL_G = """
def g(x):
    print("hi, this is g, executing locally", x)
    return x**3
"""
CUBES = "[0, 1, 8, 27, 64, 125, 216, 343, 512, 729]"
G_LINES = "".join(f"hi, this is g, executing locally {i}\n" for i in range(10))


def test_rconnect_prints_who_it_reached(kernel, classic_server):
    kernel.ok("%load_ext jupyter_rsym\n%rdisconnect --all")  # a new session, whatever ran before
    cell = kernel.ok(f"%rconnect {classic_server.address}")
    assert re.fullmatch(
        rf"Connected r to {re.escape(classic_server.address)}: Python 3\.\d+\.\d+ on .+, rpyc 6\.\d+\.\d+\n",
        cell.stdout,
    ), cell.stdout
    assert "connected to" in kernel.ok("print(repr(r))").stdout


def test_tutorial_map_prints_in_the_cell_in_order(connected):
    connected.ok("rlist = r.builtins.range(10)" + TUTORIAL_G)
    cell = connected.ok("list(r.modules.builtins.map(g, rlist))")
    assert cell.stdout == G_LINES
    assert cell.result["text/plain"] == CUBES
    # the tutorial's Python 2 module name works too
    cell = connected.ok("list(r.modules.__builtin__.map(g, rlist))")
    assert cell.stdout == G_LINES
    assert cell.result["text/plain"] == CUBES


def test_remote_cell_output_and_last_value(connected):
    cell = connected.ok("%%remote\nimport sys\nprint('over there')\nprint('oops', file=sys.stderr)\n6 * 7")
    assert cell.stdout == "over there\n"
    assert cell.stderr == "oops\n"
    assert cell.result["text/plain"] == "42"
    # the remote namespace persists between cells and is r.namespace
    connected.ok("%%remote\nkept = 'still here'")
    assert connected.ok("r.namespace['kept']").result["text/plain"] == "'still here'"


def test_remote_cell_streams_while_it_runs(connected):
    cell = connected.ok("%%remote\nimport time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')")
    streams = cell.of_type("stream")
    first = next(m for m in streams if "first" in m["content"]["text"])
    idle = next(m for m in cell.of_type("status") if m["content"]["execution_state"] == "idle")
    assert cell.stdout == "first\nsecond\n"
    # 'first' reached the notebook while the remote cell was still sleeping
    assert idle["received"] - first["received"] > 1.0


def test_remote_cell_with_100k_lines_is_batched(connected):
    cell = connected.ok("%%remote\nfor i in range(100000):\n    print(i)", timeout=60)
    assert cell.stdout == "".join(f"{i}\n" for i in range(100000))
    batches = connected.ok("print(r.output_batches)").stdout
    assert int(batches) < 200, batches  # not one round trip per print


def test_rich_last_value_renders_remotely(connected):
    cell = connected.ok(
        "%%remote\nclass Card:\n    def _repr_html_(self):\n        return '<b>card</b>'\n"
        "    def __repr__(self):\n        return 'Card()'\nCard()"
    )
    assert cell.result["text/html"] == "<b>card</b>"
    assert cell.result["text/plain"] == "Card()"
    cell = connected.ok("%%remote\nclass Dot:\n    def _repr_png_(self):\n        return b'\\x89PNG-bytes'\nDot()")
    assert cell.result["image/png"] == "iVBORy1ieXRlcw=="  # base64 of the remote bytes


def test_inputs_and_outputs(connected):
    connected.ok("data = [1, 2, 3]\ndef report(x):\n    print('reported', x)\n    return x * 10")
    cell = connected.ok(
        "%%remote -i data,report -i factor=data -o total -o doubled=local_doubled\n"
        "data.append(4)\ntotal = sum(report(x) for x in data)\ndoubled = [x * 2 for x in data]"
    )
    assert cell.stdout == "".join(f"reported {x}\n" for x in (1, 2, 3, 4))
    check = connected.ok("print(data, total, local_doubled, type(local_doubled).__name__)")
    # data went as a copy: the remote append did not change the notebook's list
    assert check.stdout == "[1, 2, 3] 100 [2, 4, 6, 8] list\n"
    assert connected.ok("%remote factor").result["text/plain"] == "[1, 2, 3]"


def test_none_is_handed_over_not_dropped(connected):
    connected.ok("nothing = None")
    cell = connected.ok("%%remote -i nothing\nprint(repr(nothing))")
    assert cell.stdout == "None\n"


def test_line_magic_returns_the_value(connected):
    assert connected.ok("%remote sum(range(10))").result["text/plain"] == "45"
    connected.ok("pid = %remote __import__('os').getpid()")
    assert connected.ok("pid == r.modules.os.getpid()").result["text/plain"] == "True"


def test_remote_exception_shows_remote_frames_only(connected):
    cell = connected.run("%%remote\ndef inner():\n    return 1 / 0\nx = 1\ninner()")
    assert cell.error["ename"] == "ZeroDivisionError"
    assert cell.error["evalue"] == "division by zero"
    text = cell.error_text
    assert "<remote-cell-" in text and "return 1 / 0" in text and "inner()" in text
    assert "rpyc" not in text and "jupyter_rsym" not in text and "agent" not in text
    # the notebook can catch it as the built-in type; the next cell works
    cell = connected.ok("try:\n    %remote 1 / 0\nexcept ZeroDivisionError as e:\n    print('caught', e)")
    assert cell.stdout == "caught division by zero\n"


def test_remote_syntax_error(connected):
    cell = connected.run("%%remote\nx = (")
    assert cell.error["ename"] == "SyntaxError"
    assert "x = (" in cell.error_text
    assert connected.ok("%remote 1 + 1").result["text/plain"] == "2"


def test_exception_from_a_remote_call_is_clean(connected):
    connected.ok("%%remote\ndef fails(x):\n    raise ValueError(f'bad value {x}')")
    cell = connected.run("r.namespace['fails'](3)")
    assert (cell.error["ename"], cell.error["evalue"]) == ("ValueError", "bad value 3")
    text = cell.error_text
    assert "raise ValueError(f'bad value {x}')" in text and "in fails" in text
    assert "rpyc" not in text and "agent" not in text and "Remote Traceback" not in text
    cell = connected.run("r.modules.os.listdir('/nonexistent-dir')")
    assert cell.error["ename"] == "FileNotFoundError"
    assert cell.error_text.strip() == f"FileNotFoundError: {cell.error['evalue']}"
    # ordinary local errors keep IPython's usual traceback
    local = connected.run("def local_fail():\n    return 1 / 0\nlocal_fail()")
    assert local.error["ename"] == "ZeroDivisionError" and "local_fail()" in local.error_text


def test_remote_and_callback_output_keep_their_order(connected):
    connected.ok("def shout(word):\n    print(word)")
    cell = connected.ok("%%remote -i shout\nprint('a')\nshout('b')\nprint('c')\nshout('d')")
    assert cell.stdout == "a\nb\nc\nd\n"


def test_notebook_objects_the_remote_cannot_copy_go_by_reference(connected):
    connected.ok(
        "class Counter:\n    def __init__(self):\n        self.n = 0\n    def bump(self):\n        self.n += 1\n        return self.n\ncounter = Counter()"
    )
    cell = connected.ok("%%remote -i counter\ncounter.bump()\ncounter.bump()")
    assert cell.result["text/plain"] == "2"
    # it was a reference: the notebook's object changed
    assert connected.ok("counter.n").result["text/plain"] == "2"
