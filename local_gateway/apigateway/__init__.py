"""API Gateway's part: the WebSocket endpoints (Socket.IO at /socket.io/, the deployed API's own at
/{stage}), the events they build, the connection registry, lanes, handshakes, input screening, and the
Management API."""
