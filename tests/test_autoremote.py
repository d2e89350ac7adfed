"""Issue 18 part 3: %autoremote runs plain cells remotely; magics and %%local stay local."""

import pytest

from .hosts import connect_fresh
from .test_sessions import one_line_error


@pytest.fixture(scope="module")
def auto(kernel, classic_server):
    connect_fresh(kernel, {"box": classic_server.address})
    kernel.ok("%%remote\nremote_only_name = 1\nimport os")
    yield kernel
    kernel.ok("%autoremote off")


def complete(kernel, code):
    msg_id = kernel.kc.complete(code, len(code))
    return kernel.reply_for(msg_id)["content"]["matches"]


def test_plain_cells_run_remotely_until_off(auto, classic_server):
    on = auto.ok("%autoremote box")
    assert on.stdout == "autoremote on: plain cells run on box (%%local runs one cell here; %autoremote off)\n"
    cell = auto.ok("import os\nprint('pid', os.getpid())\nos.getpid()")
    pid = classic_server.process.pid
    assert cell.stdout == f"pid {pid}\n" and cell.result["text/plain"] == str(pid)
    # magics and shell escapes run as usual; %%local runs one cell in the notebook
    assert auto.ok("%rconnections").stdout.startswith("name")
    local = auto.ok("%%local\nimport os\nkernel_pid = os.getpid()\nkernel_pid")
    assert local.result["text/plain"] != str(pid)
    assert auto.ok("!echo from a shell").stdout.strip() == "from a shell"
    assert auto.ok("'kernel_pid' in globals()").result["text/plain"] == "False"  # remote globals
    # history keeps what the user typed
    raw = auto.ok("%%local\nget_ipython().history_manager.input_hist_raw[-2]").result["text/plain"]
    assert raw == repr("'kernel_pid' in globals()")
    off = auto.ok("%autoremote off")
    assert off.stdout == "autoremote off: cells run here\n"
    assert auto.ok("os.getpid() == kernel_pid").result["text/plain"] == "True"


def test_cells_only_the_remote_parses_go_there(auto):
    auto.ok("%autoremote")  # the newest session
    cell = auto.run("x = (")
    assert cell.error["ename"] == "SyntaxError" and "<remote-cell-" in cell.error_text
    cell = auto.run("await something")
    assert "<remote-cell-" in cell.error_text  # sent as typed, never the previous cell
    auto.ok("%autoremote off")


def test_completion_comes_from_the_remote_namespace(auto):
    assert "remote_only_name" not in complete(auto, "remote_only_na")
    auto.ok("%autoremote box")
    assert complete(auto, "remote_only_na") == ["remote_only_name"]
    assert "os.path" in complete(auto, "x = 1\nos.pa")
    assert complete(auto, "%%local\nremote_only_na") == []
    assert "%autoremote" in complete(auto, "%autorem")
    auto.ok("%autoremote off")


def test_bad_session_is_one_line(auto):
    line = one_line_error(auto.run("%autoremote nope"), "UsageError")
    assert line == "UsageError: no session named 'nope'; %rconnections lists them"
    assert auto.ok("%autoremote off").stdout == "autoremote was not on\n"
