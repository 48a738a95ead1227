"""`mailflow doc`: the offboarding document and the deliverables review, written to a file.

Rendering lives in mailflow.engine.documents (the drafts that attach a document render it
there too); the desk writes the result atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mailflow.engine.documents import document_context, render_document
from mailflow.errors import StoreError

__all__ = ["document_context", "render_document", "write_document"]


def write_document(content: bytes, out: Path) -> Path:
    """Write a document atomically: a template error or a crash never leaves half a file."""
    out = out.expanduser()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise StoreError(f"{out}: cannot write the document ({err.strerror or err})") from err
    return out
