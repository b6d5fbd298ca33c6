"""Ed25519 keys and the EdDSA tokens signed with them (access and voting tokens)."""
