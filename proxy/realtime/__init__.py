"""The Realtime API: ``GET /v1/realtime`` relayed as a WebSocket, one record per session.

``endpoint`` runs a session (authenticate, connect upstream, accept, relay both ways, close
both sides alike, publish the record); ``upstream`` opens the upstream connection and maps
the ``websockets`` library's errors; ``handshake`` decides what crosses in the handshake;
``events`` turns the relayed messages into the record's bounded event log, and
``session_record`` gathers the session's record.
"""
