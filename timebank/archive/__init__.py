"""Moving a whole timebank out and in: ``timebank export`` (and ``GET …/export``) writes one zip
archive of CSV files with a manifest; ``timebank import archive`` restores it into an empty
instance (``docs/design.md``, "Export and restore")."""

from timebank.archive.reader import Restored
from timebank.archive.service import Archives

__all__ = ["Archives", "Restored"]
