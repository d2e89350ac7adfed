"""``%autoremote``: plain cells run remotely, as ``%%remote --on NAME`` cells.

An input transformer (IPython's ``input_transformers_cleanup``, which sees
the raw cell before magics are parsed) prefixes each plain cell with the
``%%remote`` line, so IPython still does all the bookkeeping (history,
execution count, events) and the remote does the parsing (a cell that only
the remote's Python understands still runs).  Cells that start with ``%``
or ``!`` run as usual; a cell that starts with ``%%local`` runs here.  The
transformer has no side effects: ipykernel transforms a cell more than once.

Completion in those cells comes from the remote namespace: a completer
matcher that, while the mode is on, answers with the remote names in one
request (``completion.complete_in_namespace``, as in ``%%remote`` cells)
and hides the notebook's own.
"""

from IPython.core.completer import SimpleCompletion, context_matcher

LOCAL = "%%local"
COMPLETE_TIMEOUT = 2.0  # seconds: a completion never hangs the notebook


class AutoRemote:
    """The ``%autoremote`` mode of one shell: which session plain cells run on."""

    def __init__(self, shell, extension):
        self.shell = shell
        self.extension = extension
        self.session_name = None  # None: off

    def install(self):
        self.shell.input_transformers_cleanup.append(self.transform)
        self.shell.Completer.custom_matchers.append(self.complete)

    def uninstall(self):
        for hooks, hook in (
            (self.shell.input_transformers_cleanup, self.transform),
            (self.shell.Completer.custom_matchers, self.complete),
        ):
            if hook in hooks:
                hooks.remove(hook)

    def transform(self, lines):
        """A cell's lines as they should run: ``%%local`` dropped, a plain cell
        prefixed with ``%%remote --on NAME`` while the mode is on."""
        first = lines[0].strip() if lines else ""
        if first == LOCAL or first.startswith(LOCAL + " "):
            return lines[1:]
        if self.session_name is None or not first or first.startswith(("%", "!")):
            return lines
        return [f"%%remote --on {self.session_name}\n", *lines]

    @context_matcher()
    def complete(self, context):
        """Names from the remote namespace while the mode is on (one request)."""
        if self.session_name is None or not _is_remote_cell(context.full_text):
            return {"completions": [], "suppress": False}
        try:
            names = self._remote_names(context)
        except Exception:
            names = ()
        completions = [SimpleCompletion(name, type="remote") for name in names]
        return {"completions": completions, "suppress": True}

    def _remote_names(self, context):
        from .completion import complete_in_namespace

        session = self.extension.sessions.get(self.session_name)
        found = complete_in_namespace(session, context.line_with_cursor, timeout=COMPLETE_TIMEOUT)
        if found is None:
            return ()
        fragment, pairs = found
        start = context.token[: len(context.token) - len(fragment)]  # "os." of "os.pa"
        return [start + text for text, _ in pairs]


def _is_remote_cell(text):
    first = text.lstrip("\n").split("\n", 1)[0].strip()
    return not first.startswith(("%", "!"))
