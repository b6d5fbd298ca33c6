"""Files that hold what urne knows, created readable by urne's user alone.

Data files (SQLite), the development outbox (sign-in codes) and the folders they are
in: 0600 files in 0700 folders, whatever the process's umask, so that another account
on the machine reads neither codes nor ballots. Only what urne creates: a folder or a
file that exists already keeps the mode its owner gave it.
"""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_MODE, FILE_MODE = 0o700, 0o600


def private_folder(path: Path) -> Path:
    """``path`` and any missing parent, each made 0700."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode passes through the umask
    return path


def private_file(path: Path) -> Path:
    """``path`` created empty and 0600 if missing, in a private folder."""
    private_folder(path.parent)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
        os.chmod(path, FILE_MODE)
    except FileExistsError:
        pass
    return path
