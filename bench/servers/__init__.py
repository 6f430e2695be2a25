"""One small echo + broadcast server per peer, with identical semantics.

Each module runs as ``python -m bench.servers.<name> --port N [--deflate]
[--uvloop]`` and behaves as ``examples/bench_server.py`` does for wsserver:
messages are echoed unchanged (text as text, binary as binary) except the
text command ``broadcast:<n>[:<size>]``, which sends ``n`` text messages of
``size`` bytes (default 16) to every connected client, the sender included.
Messages up to 64 MiB are accepted; compression is off unless ``--deflate``
(then each library's own default permessage-deflate settings apply); every
other setting is the library's default.  SIGTERM stops the server.
"""
