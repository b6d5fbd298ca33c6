"""The public record: canonical encoding, Merkle tree, signed documents.

Depends on nothing but the standard library and ``cryptography``, so the
verifier can use it with the published record alone.
"""
