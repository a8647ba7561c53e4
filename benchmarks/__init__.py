"""The performance harness: chatbus against raw redis-py pub/sub on one hub, in one run.

``python -m benchmarks`` (``make bench``) starts a valkey-server of its own on a
free loopback port, runs every scenario once for chatbus and once for a plain
redis-py baseline, prints a table and writes the figures as JSON. Senders and
receivers run in worker processes (:mod:`benchmarks.worker`) so that, as for
real users, they do not share an interpreter. See docs/PERFORMANCE.md.
"""
