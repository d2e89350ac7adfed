"""The notebook's sessions by name, and which one is the default."""


class SessionRegistry:
    """The notebook's sessions by name.

    The default target (no ``--on``) is the session named by ``preferred()``
    (``RSym.default_session``), else the most recently connected one.
    """

    NO_SESSION = "no remote session: connect first with %rconnect HOST[:PORT]"
    UNKNOWN = "no session named {!r}; %rconnections lists them"
    NO_DEFAULT = (
        "the default session {!r} (RSym.default_session) is not open; "
        "%rdefault NAME picks another, %rconnections lists them"
    )

    def __init__(self, preferred=lambda: ""):
        self._sessions = {}
        self._preferred = preferred

    def add(self, session):
        """Register ``session``, closing a session of the same name."""
        old = self._sessions.pop(session.name, None)
        self._sessions[session.name] = session
        if old is not None and old is not session:
            old.close()

    def default_name(self):
        """The name of the session used without ``--on`` (None: no session)."""
        preferred = self._preferred()
        if preferred:
            return preferred
        return next(reversed(self._sessions), None)

    def get(self, name=None):
        if name is None:
            if not self._sessions:
                raise LookupError(self.NO_SESSION)
            name = self.default_name()
            if name not in self._sessions:
                raise LookupError(self.NO_DEFAULT.format(name))
        try:
            return self._sessions[name]
        except KeyError:
            raise LookupError(self.UNKNOWN.format(name)) from None

    def remove(self, name):
        session = self.get(name)
        del self._sessions[session.name]
        session.close()
        return session

    def close_all(self):
        while self._sessions:
            _, session = self._sessions.popitem()
            session.close()

    def __iter__(self):
        return iter(list(self._sessions.values()))

    def __len__(self):
        return len(self._sessions)
