"""TAB completion, ``obj?`` and ``help()`` on remote objects: one request each.

IPython's completer (Jedi, attribute and dict-key matchers) and inspector
probe an object attribute by attribute: on a proxy each probe is a round
trip (TAB on ``r.builtins.`` took hundreds).  For code that reaches into a
session, ``r.modules.os.pa``, ``r.builtins.``, ``r.namespace['x'].``, a
notebook name bound to a remote object, a remote dict's keys, or a name in a
``%%remote`` cell, we find the remote *target* locally without touching the
remote (only sessions, ``r.modules`` and proxies are looked at; nothing is
evaluated) and ask the agent once (``agent/introspect.py``) for the names
and their kinds, or for everything ``obj?``/``??`` shows.

The hooks: ``IPCompleter._complete`` (IPython lets a matcher suppress the
others only when it has results, so an empty remote answer would still let
Jedi walk the proxy: for remote code our answer is the whole answer),
``shell._ofind`` and ``shell.inspector.info`` (find and describe in one
request) and ``pydoc.render_doc`` (``help()``).  Everything else goes to
IPython unchanged.  A remote that does not answer within
``RSym.introspection_timeout`` gives no completions; nothing here raises
into IPython.
"""

import ast
import pydoc
import re

from rpyc.core.netref import BaseNetref

from .magiccompletion import complete_magic_arguments

MATCHER_ID = "jupyter_rsym.remote"
_ATTRIBUTE = re.compile(r"\.\s*([A-Za-z_]\w*)?$")
_KEY = re.compile(r"\[\s*(['\"]?)([^'\"\[\]]*)$")
_NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*)?$")
_IMPORT = re.compile(r"^\s*(?:import|from)\s+([\w.]*)$")
_ON = re.compile(r"--on[\s=]+(\w+)")
_MAX_CHAIN = 300  # characters of a line searched for the expression before the cursor


def session_of(obj):
    """The session a proxy belongs to, or None."""
    if not isinstance(obj, BaseNetref):
        return None
    return getattr(object.__getattribute__(obj, "____conn__"), "session", None)


def parse_chain(text):
    """``root, steps`` for the longest expression ending ``text`` that is a
    name followed by attributes and literal subscripts (``r.namespace['x'].y``),
    or None.  ``steps`` are ``("attr", name)`` and ``("item", key)``."""
    text = text[-_MAX_CHAIN:]
    for start in range(len(text)):
        if not (text[start].isidentifier() and (start == 0 or not _continues(text[start - 1]))):
            continue
        try:
            node = ast.parse(text[start:], mode="eval").body
        except SyntaxError:
            continue
        found = _steps(node)
        if found is not None:
            return found
    return None


def _continues(char):
    return char.isalnum() or char in "_.)]'\""


def _steps(node):
    steps = []
    while True:
        if isinstance(node, ast.Attribute):
            steps.append(("attr", node.attr))
            node = node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            steps.append(("item", node.slice.value))
            node = node.value
        elif isinstance(node, ast.Name):
            return node.id, steps[::-1]
        else:
            return None


class RemoteIntrospection:
    """Completion and inspection hooks of one shell (see the module docstring)."""

    def __init__(self, shell, extension):
        self.shell = shell
        self.extension = extension
        self._originals = {}
        self._described = None  # (obj, session, fields) of the last remote _ofind

    # -- installing -----------------------------------------------------------

    def install(self):
        if self._originals:
            return
        completer, inspector = self.shell.Completer, self.shell.inspector
        self._originals = {
            "complete": completer._complete,
            "ofind": self.shell._ofind,
            "info": inspector.info,
            "render_doc": pydoc.render_doc,
        }
        completer._complete = self._complete
        self.shell._ofind = self._ofind
        inspector.info = self._info
        pydoc.render_doc = self._render_doc

    def uninstall(self):
        if not self._originals:
            return
        for owner, name in (
            (self.shell.Completer, "_complete"),
            (self.shell, "_ofind"),
            (self.shell.inspector, "info"),
        ):
            owner.__dict__.pop(name, None)  # back to the class's method
        pydoc.render_doc = self._originals["render_doc"]
        self._originals = {}

    # -- finding the remote target ----------------------------------------------

    def target(self, root, steps):
        """``(session, target, steps)`` for notebook code ``root.steps...``, or
        None if it does not reach into a session.  Looks at notebook objects
        only through sessions, ``r.modules`` and proxies: nothing runs."""
        obj = self.shell.user_ns.get(root)
        steps = list(steps)
        sessions = list(self.extension.sessions)
        session = next((s for s in sessions if s is obj), None)
        if session is not None:
            if not steps:
                return None
            step = steps.pop(0)
            if step == ("attr", "builtins"):
                return session, ("object", session.builtins), steps
            if step == ("attr", "namespace"):
                return session, ("object", session.namespace), steps
            if step != ("attr", "modules"):
                return None
            obj = session.connection.modules
        else:
            session = next(
                (s for s in sessions if s.connection is not None and s.connection.__dict__.get("modules") is obj), None
            )
        if session is not None:  # obj is r.modules
            if not steps:
                return session, ("modules",), steps
            _, name = steps.pop(0)
            return (session, ("module", name), steps) if isinstance(name, str) else None
        session = session_of(obj)
        return (session, ("object", obj), steps) if session is not None else None

    def cell_session(self, full_text, cursor_line):
        """The session a ``%%remote`` cell runs on, if the cursor is in its body."""
        lines = full_text.split("\n")
        first = lines[0].strip()
        if not first.startswith("%%remote") or cursor_line == 0:
            return None
        name = _ON.search(first)
        try:
            return self.extension.sessions.get(name.group(1) if name else None)
        except LookupError:
            return None

    # -- completion ---------------------------------------------------------------

    def _complete(self, *, cursor_line, cursor_pos, line_buffer=None, text=None, full_text=None):
        original = self._originals["complete"]
        kwargs = dict(
            cursor_line=cursor_line, cursor_pos=cursor_pos, line_buffer=line_buffer, text=text, full_text=full_text
        )
        try:
            result = self._remote_result(cursor_line, cursor_pos, line_buffer, text, full_text)
        except Exception:
            result = None
        if result is None:
            return original(**kwargs)
        self.shell.Completer.matches = [c.text for c in result["completions"]]  # legacy API
        return {MATCHER_ID: result}

    def _remote_result(self, cursor_line, cursor_pos, line_buffer, text, full_text):
        if not line_buffer and full_text:
            line_buffer = full_text.split("\n")[cursor_line]
        line_buffer = line_buffer if line_buffer is not None else (text or "")
        before = line_buffer[: len(line_buffer) if cursor_pos is None else cursor_pos]
        found = complete_magic_arguments(self.extension, self.shell, before, self._timeout())
        if found is None:  # not %rpull NAME, --on NAME, ...
            if self._autoremote_cell(full_text or line_buffer):
                return None  # %autoremote completes its own cells
            session = self.cell_session(full_text or line_buffer, cursor_line)
            if session is not None:
                found = complete_in_namespace(session, before, self._hide(), self._timeout())
            else:
                found = self._complete_notebook_code(before)
        if found is None:
            return None
        fragment, pairs = found
        from IPython.core.completer import SimpleCompletion

        return {
            "completions": [SimpleCompletion(t, type=kind) for t, kind in pairs],
            "matched_fragment": fragment,
            "suppress": True,
        }

    def _complete_notebook_code(self, before):
        context = completion_context(before)
        if context is None or context[0] == "name":
            return None
        what, chain, fragment, quote = context
        found = parse_chain(chain)
        if found is None:
            return None
        resolved = self.target(*found)
        if resolved is None:
            return None
        session, target, steps = resolved
        return fragment, ask(session, target, steps, what, fragment, quote, self._hide(), self._timeout())

    def _autoremote_cell(self, text):
        """Whether ``text`` is a plain cell that ``%autoremote`` runs remotely."""
        if getattr(getattr(self.extension, "autoremote", None), "session_name", None) is None:
            return False
        first = text.lstrip("\n").split("\n", 1)[0].strip()
        return not first.startswith(("%", "!"))

    def _hide(self):
        return getattr(self.shell.Completer, "omit__names", 2)

    def _timeout(self):
        return self.extension.settings.introspection_timeout

    # -- obj?, obj??, help() ------------------------------------------------------------

    def _ofind(self, oname, namespaces=None):
        try:
            found = self._remote_ofind(oname)
        except Exception:
            found = None
        return found if found is not None else self._originals["ofind"](oname, namespaces)

    def _remote_ofind(self, oname):
        chain = parse_chain(oname.strip())
        if chain is None or not chain[1] and session_of(self.shell.user_ns.get(chain[0])) is None:
            return None
        resolved = self.target(*chain)
        if resolved is None:
            return None
        session, target, steps = resolved
        from IPython.core.oinspect import OInfo

        try:
            found, obj, fields = session.call("describe", target, tuple(steps), 1, timeout=self._timeout())
        except Exception:
            found, obj, fields = False, None, ()
        self._described = (obj, session, dict(fields)) if found else None
        return OInfo(ismagic=False, isalias=False, found=found, obj=obj, namespace="Interactive", parent=None)

    def _info(self, obj, oname="", info=None, detail_level=0):
        described = self._described
        if described is not None and described[0] is obj:
            session, fields = described[1], described[2]
        else:
            session = session_of(obj)
            if session is None:
                return self._originals["info"](obj, oname=oname, info=info, detail_level=detail_level)
            try:
                _, _, fields = session.call("describe", ("object", obj), (), detail_level, timeout=self._timeout())
                fields = dict(fields)
            except Exception:
                fields = {"type_name": "remote object (no answer)"}
        return info_dict(oname, session, fields, self.shell.inspector, detail_level)

    def _render_doc(self, thing, title="Python Library Documentation: %s", forceload=0, renderer=None):
        session = session_of(thing)
        if session is not None and renderer in (None, pydoc.plaintext):
            try:
                return session.call("help", thing, title, timeout=self._timeout())
            except Exception:
                pass
        return self._originals["render_doc"](thing, title, forceload, renderer)


def completion_context(before):
    """What the cursor completes in ``before`` (the line up to the cursor):
    ``("attr", chain, fragment, "")``, ``("key", chain, fragment, quote)``,
    ``("name", "", fragment, "")`` or None."""
    match = _KEY.search(before)
    if match:
        return "key", before[: match.start()], match.group(2), match.group(1)
    match = _ATTRIBUTE.search(before)
    if match:
        return "attr", before[: match.start()], match.group(1) or "", ""
    match = _NAME.search(before)
    if match:
        return "name", "", match.group(1) or "", ""
    return None


def ask(session, target, steps, what, fragment, quote, hide=2, timeout=2.0):
    """The agent's completions for one target, as ``(text, kind)`` pairs
    (dict keys quoted as IPython does); nothing if it fails or is slow."""
    try:
        pairs = session.call(
            "complete", target, tuple(steps), "" if what == "key" else fragment, what, hide, timeout=timeout
        )
    except Exception:
        return []
    if what != "key":
        return list(pairs)
    keys = []
    for key, kind in pairs:
        if quote:
            if isinstance(key, str) and key.startswith(fragment):
                keys.append((key, kind))
        elif repr(key).startswith(fragment):
            keys.append((repr(key), kind))
    return keys


def complete_in_namespace(session, before, hide=2, timeout=2.0):
    """Completions for code typed to run in ``session``'s remote namespace
    (a ``%%remote`` cell; reusable for any "this runs remotely" input):
    ``before`` is the line up to the cursor.  Returns ``(fragment, [(text,
    kind), ...])``, one request, or None if there is nothing to complete."""
    imported = _IMPORT.match(before)
    if imported:
        dotted = imported.group(1)
        package, _, fragment = dotted.rpartition(".")
        target = ("module", package) if package else ("modules",)
        return fragment, ask(session, target, (), "attr", fragment, "", hide, timeout)
    context = completion_context(before)
    if context is None:
        return None
    what, chain, fragment, quote = context
    if what == "name":
        return fragment, ask(session, ("name", session.namespace), (), "name", fragment, "", hide, timeout)
    found = parse_chain(chain)
    if found is None:
        return None
    root, steps = found
    return fragment, ask(session, ("name", session.namespace, root), steps, what, fragment, quote, hide, timeout)


def info_dict(oname, session, fields, inspector, detail_level=0):
    """IPython's info dict (what ``obj?`` shows) from the agent's ``fields``:
    ``obj?`` shows the docstring, ``obj??`` the source (and the docstring
    only if the source does not contain it), as IPython does locally."""
    from IPython.core.oinspect import object_info

    fields = dict(fields)
    if not detail_level:
        fields.pop("source", None)

    signature = fields.pop("signature", None)
    init_signature = fields.pop("init_definition", None)
    call_signature = fields.pop("call_signature", None)
    fields.pop("simple_callable", None)
    out = object_info(
        name=oname,
        found=True,
        isclass=bool(fields.pop("isclass", False)),
        **{k: v for k, v in fields.items() if v is not None},
    )
    out["namespace"] = f"remote session {session.name}"
    if signature:
        out["definition"] = oname + signature
    if init_signature:
        out["init_definition"] = oname + init_signature
    if call_signature:
        out["call_def"] = oname + call_signature
    docstring = fields.get("docstring") or "<no docstring>"
    out["docstring"] = None if inspector._source_contains_docstring(out.get("source"), docstring) else docstring
    return out
