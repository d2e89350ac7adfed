"""Issue 26, part 6: %%remote cells behave as scripts and as IPython cells:
``__name__ == "__main__"``, ``!cmd``, ``%time``, ``%timeit``, ``obj?`` run remotely."""

import re


def test_name_is_main(connected):
    cell = connected.ok('%%remote\nif __name__ == "__main__":\n    print("main runs")')
    assert cell.stdout == "main runs\n"


def test_shell_commands_run_remotely_with_output_in_the_cell(connected):
    cell = connected.ok(
        "%%remote\nimport os\nword = 'there'\n"
        "!echo pid $PPID {word}; echo oops >&2\nlisted = !echo one; echo two\n"
        "print(listed, _exit_code)"
    )
    server_pid = connected.ok("%remote __import__('os').getpid()").result["text/plain"]
    assert cell.stdout == f"pid {server_pid} there\n['one', 'two'] 0\n"
    assert cell.stderr == "oops\n"


def test_time_and_timeit_time_remote_code(connected):
    cell = connected.ok(
        "%%remote\nimport os\n%time total = sum(range(1000))\n%timeit -n 3 -r 2 os.getpid()\nmarker = os.getpid()"
    )
    lines = cell.stdout.splitlines()
    assert re.fullmatch(r"CPU times: user .+, sys: .+, total: .+", lines[0]), lines
    assert lines[1].startswith("Wall time: ")
    assert re.fullmatch(r".+ ± .+ per loop \(mean ± std. dev. of 2 runs, 3 loops each\)", lines[2]), lines
    assert connected.ok("%remote total").result["text/plain"] == "499500"
    value = connected.ok("%%remote\n%time 6 * 7")
    assert value.result["text/plain"] == "42" and value.stdout.startswith("CPU times")
    whole = connected.ok("%%remote\n%%timeit -n 2 -r 1 import os\nos.getpid()")
    assert "1 run, 2 loops each" in whole.stdout


def test_help_on_remote_names(connected):
    connected.ok('%%remote\ndef documented(x):\n    """Says what it does."""\n    return x')
    cell = connected.ok("%%remote\ndocumented?")
    assert "Signature:      documented(x)" in cell.stdout
    assert "Docstring:\nSays what it does." in cell.stdout
    source = connected.ok("%%remote\ndocumented??").stdout
    assert 'def documented(x):\n    """Says what it does."""' in source


def test_other_magics_say_what_runs(connected):
    cell = connected.run("%%remote\n%matplotlib inline")
    assert cell.error["ename"] == "NotImplementedError"
    assert "%matplotlib does not run in a remote cell; these do: !cmd" in cell.error_text


def test_child_process_output_lands_in_the_cell(connected):
    cell = connected.ok(
        "%%remote\nimport os, subprocess, sys\n"
        "subprocess.run([sys.executable, '-c', 'print(\"child out\"); import sys; print(\"child err\", file=sys.stderr)'])\n"
        "code = os.system('echo from os.system')\n"
        "kept = subprocess.run(['echo', 'captured'], capture_output=True, text=True).stdout\n"
        "print('after', code, repr(kept))"
    )
    assert cell.stdout == "child out\nfrom os.system\nafter 0 'captured\\n'\n"
    assert cell.stderr == "child err\n"


def test_children_of_unrouted_work_keep_the_server_terminal(connected):
    # a child started by no cell's work (an empty context, as a server's own
    # thread) writes to the server's descriptors, not to any cell
    cell = connected.ok(
        "%%remote\nimport contextvars, subprocess\n"
        "done = contextvars.Context().run(subprocess.run, ['echo', 'to the terminal'])\n"
        "print('rc', done.returncode)"
    )
    assert cell.stdout == "rc 0\n"
