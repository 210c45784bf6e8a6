"""Compatibility path for unpickling models registered before kubecycle 0.x's architecture step.

Those models pickled their custom transformers under this module; unpickling them looks the
classes up here.

New models refer to kubecycle.transformers (where the classes live).
"""

from kubecycle.transformers import (  # noqa: F401 (re-exported for unpickling)
    DATETIME_PARTS,
    MISSING_TEXT,
    DatetimeExpander,
    TextColumns,
)
