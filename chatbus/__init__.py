"""chatbus: a terminal chat whose hub is a Redis server.

This package is the library: accounts, presence, direct messages and the
receiver that keeps a client connected. It never prints and never prompts;
the click commands live in ``chatbus_cli``.
"""

import logging

__version__ = "0.1.0"

# A library logs; the application decides where it goes.
logging.getLogger(__name__).addHandler(logging.NullHandler())
