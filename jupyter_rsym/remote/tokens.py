"""Tokens: made at random, and refused when too short to stand an offline guess.

A client proves a token to whoever answers at the address (``auth.py``):
an impostor learns an HMAC of it over nonces it chose, which it can test
guesses against offline, so a token must hold enough randomness in form
(``weak_token``).  The server applies this to every token it is given, the
client to every token it would prove.  Standard library only.
"""


class WeakToken(ValueError):
    """A token with less than 128 bits of randomness in form (``weak_token``)."""


def make_token():
    """A new random token (256 bits as hex: it never starts with "-", which
    the pasted ``%rconnect ... --token T`` line would read as an option)."""
    import secrets

    return secrets.token_hex(32)


MIN_HEX_DIGITS = 32  # 128 bits as hex
MIN_CHARACTERS = 22  # 128 bits as base64 (22 x 6 bits)
MAKE_ONE = 'python -c "import secrets; print(secrets.token_hex(32))"'


def weak_token(token):
    """Why ``token`` is too weak to stand an offline guess, or None if it is not.

    "In form": 32 hex digits or 22 other characters hold 128 bits if they
    were drawn at random; a shorter token cannot, whatever it is.
    """
    hexadecimal = all(c in "0123456789abcdefABCDEF" for c in token)
    if hexadecimal and len(token) < MIN_HEX_DIGITS:
        return f"the token has {len(token)} hex digits, fewer than {MIN_HEX_DIGITS} (128 bits)"
    if not hexadecimal and len(token) < MIN_CHARACTERS:
        return f"the token has {len(token)} characters, fewer than {MIN_CHARACTERS} (128 bits)"
    if token != token.strip() or any(c.isspace() for c in token):
        return "the token contains white space"
    return None


def check_token(token):
    """Raise ``WeakToken`` (one line saying how to make a good one) for a weak token."""
    why = weak_token(token)
    if why:
        raise WeakToken(f"{why}; make one with: {MAKE_ONE}")
