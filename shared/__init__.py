"""Code shared by every Lambda handler: configuration, codec, store, poster, metrics and actions."""
