"""urne: citizen votes and consultations, verifiable end to end.

One import namespace, in floors: a module imports from its own floor or the ones
below (on floor 3, only from its own package)
(checked by ``tests/unit/test_layers.py``):

4. ``urne.runtime``, ``urne.__main__``   entry points and wiring: the composition root
3. ``urne.gateway`` (folder ``gateway/``) and ``urne.services.<name>`` (folder
   ``services/``): siblings that never import each other; they meet only in messages
2. ``urne.messaging``, ``urne.storage``  the message kernel and its transports; storage helpers
1. ``urne.platform``, ``urne.crypto``, ``urne.audit``   settings, logging, metrics, errors;
   keys and tokens; the auditor's verifier
0. ``urne.contracts``, ``urne.counting``, ``urne.record``: public formats, pure counting
"""

__version__ = "0.1.0"
