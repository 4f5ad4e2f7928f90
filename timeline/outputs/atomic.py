"""Every output file is written whole or not at all.

The writer writes into a temporary file beside the target (same folder, so the same file
system) and the temporary file is renamed over the target only once it is complete. A
kill, a full disk or a failing writer leaves the old file as it was and no temporary file
behind; the caller gets one :class:`~timeline.errors.OutputError` sentence.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from timeline.errors import OutputError


def write_atomically(
    path: str | os.PathLike[str],
    write: Callable[[Path], object],
    *,
    errors: tuple[type[Exception], ...] = (OSError,),
) -> Path:
    """Call ``write(temporary_path)``, then rename the result over ``path``.

    ``errors`` are the exceptions of ``write`` that mean the file system refused (a
    library may wrap ``ENOSPC`` in its own error); they become an :class:`OutputError`.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "events.csv"
    >>> write_atomically(target, lambda tmp: tmp.write_text("a,b\\n")).read_text()
    'a,b\\n'
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: the folder {folder} does not exist")
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except (OSError, *errors) as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(exc: Exception) -> str:
    """The operating system's words for ``exc`` (``No space left on device``)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    code = re.search(r"os error (\d+)", str(exc))
    return os.strerror(int(code.group(1))) if code else str(exc).splitlines()[0]
