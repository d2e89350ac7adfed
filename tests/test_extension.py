"""Loading, unloading, settings, config-file preload, and magic help."""

import pytest

from .harness import KernelHarness

# every magic of README's table ("%magic? shows each magic's full help")
MAGICS = [
    "%rconnect",
    "%rdisconnect",
    "%rconnections",
    "%remote",
    "%%remote",
    "%rjobs",
    "%autoremote",
    "%rpush",
    "%rpull",
    "%rbind",
    "%%local",
    "%rdefault",
    "%rwho",
    "%rwhos",
]


def test_load_twice_unload_closes_everything(kernel, start_server):
    server = start_server()
    kernel.ok("%load_ext jupyter_rsym\n%load_ext jupyter_rsym")
    kernel.ok("import jupyter_rsym\njupyter_rsym.load_ipython_extension(get_ipython())")
    kernel.ok(f"%rconnect {server.address}\nsession = r")
    threads = "import threading\nprint(sorted(t.name for t in threading.enumerate() if 'rsym' in t.name))"
    assert "'jupyter-rsym reader'" in kernel.ok(threads).stdout  # one for every session
    kernel.ok("%unload_ext jupyter_rsym")
    assert kernel.ok("print(session.state)").stdout == "closed\n"
    assert kernel.ok(threads).stdout == "[]\n"
    gone = kernel.run("%rconnect 127.0.0.1")
    assert "UsageError: Line magic function `%rconnect` not found" in gone.stderr
    # loading again brings everything back
    kernel.ok(f"%load_ext jupyter_rsym\n%rconnect {server.address}")
    assert kernel.ok("%remote 2 + 2").result["text/plain"] == "4"
    kernel.ok("%unload_ext jupyter_rsym")


def test_config_lists_settings_and_changes_apply(kernel, start_server):
    kernel.ok("%load_ext jupyter_rsym")
    listing = kernel.ok("%config RSym").stdout
    for trait in ("default_port", "default_name", "timeout", "cell_timeout", "connect_timeout", "connections"):
        assert f"RSym.{trait}" in listing
    server = start_server()
    kernel.ok("%config RSym.default_name = 'remote_box'\n%config RSym.timeout = 7.5")
    kernel.ok(f"%rconnect {server.address}")
    assert kernel.ok("print(remote_box.connection._config['sync_request_timeout'])").stdout == "7.5\n"
    kernel.ok(f"%rconnect {server.address} --as quick --timeout 2")
    assert kernel.ok("print(quick.connection._config['sync_request_timeout'])").stdout == "2.0\n"
    kernel.ok("%config RSym.default_name = 'r'\n%config RSym.timeout = 30.0\n%unload_ext jupyter_rsym")


def test_kernel_config_file_preloads_extension_and_sessions(tmp_path, start_server):
    server = start_server()
    profile = tmp_path / "profile_default"
    profile.mkdir()
    (profile / "ipython_kernel_config.py").write_text(
        "c.InteractiveShellApp.extensions = ['jupyter_rsym']\n"
        f"c.RSym.connections = {{'lab': '{server.address}'}}\n"
        "c.RSym.timeout = 12.0\n"
    )
    harness = KernelHarness(env={"IPYTHONDIR": str(tmp_path)})
    try:
        cell = harness.ok("print(lab.state, lab.modules.os.getpid(), lab.connection._config['sync_request_timeout'])")
        assert cell.stdout == f"connected {server.process.pid} 12.0\n"
        assert harness.ok("%%remote\n'preloaded'").result["text/plain"] == "'preloaded'"
    finally:
        harness.shutdown()


@pytest.mark.parametrize("magic", MAGICS)
def test_every_magic_has_help_with_an_example(kernel, magic):
    kernel.ok("%load_ext jupyter_rsym")
    reply = kernel.inspect(magic + "?")
    assert reply["found"], magic
    text = reply["data"]["text/plain"]
    assert "Examples" in text and "In [" in text, text
    name = magic.lstrip("%")
    assert f"%{name} " in text or f"%{name}\n" in text  # the usage line from magic_arguments
