"""``urne`` entry point.

``urne service`` runs nameko, which needs eventlet to patch the standard library
before *anything* else imports it (threading locks created earlier stay unpatched),
so that happens here, before the CLI framework and pydantic are imported.
"""

from __future__ import annotations

import sys
import warnings


def main() -> None:
    # nameko needs eventlet (D2 keeps it at the edge); its deprecation notice is known.
    warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
    if sys.argv[1:2] == ["service"]:
        import eventlet

        eventlet.monkey_patch()
    from urne.runtime.cli import app

    app(prog_name="urne")


if __name__ == "__main__":
    main()
