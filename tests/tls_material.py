"""A private CA and a server certificate for 127.0.0.1, made for TLS tests.

The same files `chatbus server --tls` makes: this is chatbus/tls.py's
``make_tls_files`` (``make_tls_files(directory)`` -> ``TlsFiles(ca, cert, key)``),
kept under this name for the tests that import it from here.
"""

from chatbus.tls import TlsFiles, make_tls_files

__all__ = ["TlsFiles", "make_tls_files"]
