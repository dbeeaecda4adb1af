"""The development gateway: the project's Lambda handlers behind Socket.IO on one port."""
