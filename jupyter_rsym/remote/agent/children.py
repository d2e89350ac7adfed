"""Output of child processes that work for a cell lands in that cell.

A child process writes to file descriptors 1 and 2, which it inherits from
the server and which every thread, and every notebook, of the server shares:
nothing there says which cell a write is for.  So for work that has a route
(``routes``), ``subprocess.Popen`` (and ``run``, ``call``, ``check_output``'s
stderr, ...) and ``os.system`` give the child a pipe of its own instead of
the inherited descriptor, and a thread of the same route copies what comes
out of it to ``sys.stdout``/``sys.stderr``, which the capture routes to the
cell.  The child's own ``Popen.stdout`` stays None: callers see no change.

Not covered, and why: ``multiprocessing`` workers (forked children run
Python with the server's ``sys.stdout`` object, whose flushing thread did not
survive the fork; spawned ones start from the server's descriptors), and
children started by C code (``os.posix_spawn``, a C library's ``fork``), which
never pass through here.  Both still write to the server's terminal.
"""

import codecs
import os
import subprocess
import sys
import threading

from . import routes

_STREAMS = ("stdout", "stderr")
COPY_GRACE = 0.5  # s a finished child's output may still take to be copied


def install():
    """Patch ``subprocess.Popen`` and ``os.system`` once per process."""
    init = subprocess.Popen.__init__
    if getattr(init, "_rsym_patched", False):
        return

    def routed_init(popen, *args, **kwargs):
        if routes.current() is None or len(args) > 4:  # stdout given by position: leave it
            return init(popen, *args, **kwargs)
        pipes = []
        for name in _STREAMS:
            if kwargs.get(name) is None:
                read_end, write_end = os.pipe()
                kwargs[name] = write_end
                pipes.append((read_end, write_end, name))
        try:
            init(popen, *args, **kwargs)
        except BaseException:
            for read_end, _, _ in pipes:
                os.close(read_end)
            raise
        finally:
            for _, write_end, _ in pipes:
                os.close(write_end)  # the child has its copy; EOF comes when it exits
        popen._rsym_copiers = [
            threading.Thread(target=_copy, args=(read_end, name), daemon=True) for read_end, _, name in pipes
        ]
        for copier in popen._rsym_copiers:
            copier.start()

    wait = subprocess.Popen.wait

    def copied_wait(popen, timeout=None):
        # the child's last lines reach the cell before what the caller prints next
        code = wait(popen, timeout)
        for copier in getattr(popen, "_rsym_copiers", ()):
            copier.join(COPY_GRACE)  # a grandchild left running keeps the pipe open
        return code

    routed_init._rsym_patched = True
    subprocess.Popen.__init__ = routed_init
    subprocess.Popen.wait = copied_wait
    system = os.system

    def routed_system(command):
        if routes.current() is None:
            return system(command)
        code = subprocess.call(command, shell=True)
        return code << 8 if code >= 0 else -code  # a wait status, as os.system returns

    routed_system.__doc__ = system.__doc__
    os.system = routed_system


def _copy(read_end, name):
    """Copy a child's output to this route's sys.stdout or sys.stderr (started
    by the routed thread, this thread works for the same cell)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        while True:
            data = os.read(read_end, 65536)
            text = decoder.decode(data, final=not data)
            if text:
                getattr(sys, name).write(text)
            if not data:
                return
    finally:
        os.close(read_end)
