"""pytest plugin: patch the standard library with eventlet before anything else runs.

nameko containers run on green threads, so the nameko adapter tests need the same
patching as ``urne service`` (``urne/__main__.py``). The rest of the suite runs on
real threads, so this runs in its own pytest process, loaded with ``-p``:

    pytest -p tests.support.green tests/nameko     (``make test`` does it)
"""

import warnings

import eventlet

warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
eventlet.monkey_patch()
