"""WebSocket push over Django Channels: the ``/ws/`` consumer and the frame publisher.

The protocol is documented in ``docs/realtime.md``. What the consumer needs from the rest of
the system (token checks, the event log, the agents' directory) is handed to it by the
composition root (``config/bootstrap.py``), so this adapter imports no other adapter.
"""
