"""What the connection layer reads from its settings, and the one translation into rpyc's config.

Settings are any object with the attributes of ``kernel.config.RSym`` (the
notebook's traitlets); the connection layer only reads them.
"""

import logging


def log_level_number(level):
    """A logging level name or number as its number (TraitError if neither)."""
    text = str(level).strip()
    if text.isdigit():
        return int(text)
    number = logging.getLevelName(text.upper())
    if not isinstance(number, int):
        raise ValueError(f"RSym.log_level: {level!r} is not a logging level (e.g. WARNING, INFO, 20)")
    return number


def rpyc_config(settings):
    """The rpyc connection config for ``settings``; the one place they meet."""
    return {
        "sync_request_timeout": settings.timeout or None,
        # the remote may call what the notebook hands it and read its public
        # attributes, but not walk private ones (``__globals__``) into the kernel
        "allow_public_attrs": True,
        "allow_pickle": True,
        "import_custom_exceptions": False,
        "instantiate_custom_exceptions": False,
        "close_catchall": True,
        # an interrupted callback must answer the remote, not unwind our reader
        "propagate_KeyboardInterrupt_locally": False,
        "logger": None,
    }


def agent_options(settings, ask):
    """What ``agent.attach`` is told about a new connection; ``ask`` answers remote ``input()``."""
    return (
        ("compress", settings.compress),
        ("batch_bytes", settings.batch_bytes),
        ("flush_interval", settings.flush_interval),
        ("ask", ask),
        ("log_level", log_level_number(settings.log_level)),
    )
