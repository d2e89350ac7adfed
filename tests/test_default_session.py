"""Issue 26, parts 3 and 5: the default session is visible and settable;
%rconnect to a name in use keeps, replaces or warns, never silently."""

import pytest

from .test_errors import one_line_error


@pytest.fixture
def two(kernel, start_server):
    kernel.ok("%config RSym.default_session = ''\n%reload_ext jupyter_rsym\n%rdisconnect --all")
    one, other = start_server(), start_server()
    kernel.ok(f"%rconnect {one.address}")
    return one, other


def pid(kernel, on=None):
    option = f"--on {on} " if on else ""
    return kernel.ok(f"%remote {option}__import__('os').getpid()").result["text/plain"]


def test_a_new_session_says_it_became_the_default(kernel, two):
    one, other = two
    cell = kernel.ok(f"%rconnect {other.address} --as gpu")
    assert cell.stdout.splitlines()[1] == (
        "gpu is now the default session (was r): %%remote, %remote, %rpush and %rpull use it "
        "without --on; %rdefault r switches back"
    )
    line = one_line_error(kernel.run("%rpull arr"), "UsageError")
    assert line == (
        "UsageError: %rpull arr: the remote namespace has no variable named 'arr' in "
        "session gpu (the default session; --on NAME looks in another)"
    )
    line = one_line_error(kernel.run("%rpull arr --on r"), "UsageError")
    assert line.endswith("named 'arr' in session r")
    listing = kernel.ok("%rconnections").stdout.splitlines()
    assert listing[-1] == "default: gpu (the most recently connected; %rdefault NAME changes it)"


def test_rdefault_and_the_setting_choose_it(kernel, two):
    one, other = two
    kernel.ok(f"%rconnect {other.address} --as gpu")
    assert pid(kernel) == str(other.process.pid)
    assert kernel.ok("%rdefault r").stdout == "default: r (RSym.default_session; %rdefault NAME changes it)\n"
    assert pid(kernel) == str(one.process.pid)
    kernel.ok("%config RSym.default_session = 'gpu'")
    assert pid(kernel) == str(other.process.pid)
    assert "default: gpu (RSym.default_session" in kernel.ok("%rconnections").stdout
    line = kernel.ok("%rdisconnect gpu").stdout.splitlines()[1]
    assert line == "r is now the default session (the most recently connected)"
    assert pid(kernel) == str(one.process.pid)
    help_text = kernel.ok("print(get_ipython().find_line_magic('rdefault').__doc__)").stdout
    assert "%rdefault [--newest] [name]" in help_text and "RSym.default_session" in help_text


def test_reconnect_same_address_keeps_the_session(kernel, two):
    one, _ = two
    kernel.ok("%%remote\nkeep = 'still here'")
    cell = kernel.ok(f"%rconnect {one.address}")
    assert cell.stdout == (
        f"r is already connected to {one.address}: kept, with its remote namespace "
        "(%rdisconnect r first for a new session)\n"
    )
    kept = kernel.ok("%remote keep")
    assert kept.result["text/plain"] == "'still here'", kept.summary()


def test_reconnect_other_address_replaces_and_says_so(kernel, two):
    one, other = two
    lines = kernel.ok(f"%rconnect {other.address}").stdout.splitlines()
    assert lines[0].startswith(f"Connected r to {other.address}")
    assert lines[1] == f"Closed the previous r ({one.address}, connected): replaced by this session"
    assert pid(kernel) == str(other.process.pid)


def test_a_notebook_variable_is_never_overwritten_silently(kernel, two):
    one, other = two
    kernel.ok("r = 0.87\nratio = [1, 2]")
    cell = kernel.ok(f"%rconnect {one.address}")
    assert "Note: the notebook variable r held a float 0.87; it now holds the session" in cell.stdout
    cell = kernel.ok(f"%rconnect {other.address} --as ratio")
    assert "Note: the notebook variable ratio held a list [1, 2]; it now holds the session" in cell.stdout
    assert kernel.ok("type(ratio).__name__").result["text/plain"] == "'RemoteSession'"
