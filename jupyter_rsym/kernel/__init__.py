"""The kernel integration: what ``%load_ext jupyter_rsym`` adds to an IPython shell.

* ``extension``      what the extension adds to a shell, and removes; the notebook frontend
* ``config``         ``RSym``: every setting, as traitlets
* ``magics/``        the magics, one module per group
* ``registry``       the notebook's sessions by name
* ``output``         remote output batches -> stream output and displays in the right cell
* ``stdin``          remote ``input()`` answered through the kernel's stdin channel
* ``richrepr``       rich display of remote objects; remote tracebacks
* ``completion``     TAB, ``obj?`` and ``help()`` on remote objects in one request
* ``fanout``         one cell on several sessions at once, no thread per host
* ``gathered``       what a fan-out cell shows: labelled values, ``FanoutError``
* ``background``     background cells: ``RemoteJob`` handles, the job list
* ``autotransform``  ``%autoremote``: the input transformer, remote completion
* ``progress``       a long transfer's progress, one display updated in place
"""
