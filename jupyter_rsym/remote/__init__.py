"""What runs in the remote process: standard library and rpyc only.

This package never imports the rest of jupyter_rsym and uses relative
imports only, so it is shipped whole and runs under any name: a stock
``rpyc_classic`` server gets it as one bundle at connect time
(``bundle.py``), ``%rconnect ssh://HOST --deploy`` unpacks it next to rpyc
(``launcher.py``), and ``jupyter-rsym serve`` imports it (``server.py``).

* ``agent/``       what a notebook's connection sets up in the remote process
* ``server``       ``jupyter-rsym serve``: a classic server behind a token and TLS
* ``gate``         new connections' TLS and token handshakes, in one thread
* ``auth``         the token handshake (both ends use it)
* ``launcher``     the remote end of ``--deploy``: unpack, serve, clean up
* ``bundle``       this package as one versioned bundle, sent only where missing
* ``wire``         the connection's frames without rpyc's copies (both ends)
* ``bulk``         large values as pickle protocol 5 buffers, in pieces (both ends)
* ``tracebacks``   one flat traceback through callback hops (both ends)
"""

__version__ = "0.1.0"
