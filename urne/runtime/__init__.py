"""The composition root: entry points (``cli.py``) and the wiring of every service
(``registry.py``) for each profile (``embedded.py``, ``distributed.py``,
``nameko_services.py``). Nothing below this floor imports it."""
