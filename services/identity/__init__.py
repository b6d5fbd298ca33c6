"""identity: persons, sign-in codes, roles and per-poll voting tokens.

The only service that knows who a person is; it hands the rest of the system a
poll-scoped pseudonym inside a signed voting token (D6).
"""
