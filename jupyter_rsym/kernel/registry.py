"""The notebook's sessions by name."""


class SessionRegistry:
    """The notebook's sessions by name; the newest is the default target."""

    NO_SESSION = "no remote session: connect first with %rconnect HOST[:PORT]"
    UNKNOWN = "no session named {!r}; %rconnections lists them"

    def __init__(self):
        self._sessions = {}

    def add(self, session):
        """Register ``session``, closing a session of the same name."""
        old = self._sessions.pop(session.name, None)
        self._sessions[session.name] = session
        if old is not None and old is not session:
            old.close()

    def get(self, name=None):
        if name is None:
            if not self._sessions:
                raise LookupError(self.NO_SESSION)
            return next(reversed(self._sessions.values()))
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
