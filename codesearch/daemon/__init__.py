"""The long-running service: one process per user that holds the models, watches every
registered repository and answers every face over one local socket.

Client side (cheap to import, never torch): :mod:`protocol` (the envelope; the params and
answers are :mod:`codesearch.wire.daemon`), :mod:`runtime`, :mod:`client` (one connection),
:mod:`link` (the one client every face uses, with its recovery rule), :mod:`lifecycle`.
Daemon side: :mod:`service` (the engine's owner and its single writer), :mod:`watcher`
(watchdog), :mod:`server` (the socket).
"""
