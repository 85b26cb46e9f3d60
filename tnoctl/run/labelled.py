"""One changed `tno_files` result -> one change per label, so `plan`/`drift` attribute it per tenant.

Why (issue 19): a per-domain loop (one module execution per domain) gave each tenant its own changed
item; the `tno_files` action converges all of them in one execution, and its entries carry a ``label``
(the domain). Its result lists ``changed_labels`` (null for an unlabelled entry) and, per entry of
``files``, its ``dest`` and ``label``. The event collector splits such a result into one change per
label, each with the diff entries of its own paths, exactly as the loop's items were.
"""

from __future__ import annotations

from typing import Any


def split_by_label(res: dict[str, Any]) -> list[tuple[str | None, Any]]:
    """``[(label, diff)]`` of a changed result: one pair per changed label, or ``[(None, diff)]`` when the
    result names no label (any other module, a `tno_files` call without labels, or a no_log result)."""
    labels = res.get("changed_labels")
    if not isinstance(labels, list) or not any(isinstance(label, str) for label in labels):
        return [(None, res.get("diff"))]
    owner = {entry.get("dest"): entry.get("label") for entry in res.get("files") or [] if isinstance(entry, dict)}
    diffs = res.get("diff")
    entries = diffs if isinstance(diffs, list) else ([diffs] if diffs else [])
    per_label: dict[str | None, list[Any]] = {label: [] for label in labels}
    for entry in entries:
        header = str((entry or {}).get("after_header") or (entry or {}).get("before_header") or "") \
            if isinstance(entry, dict) else ""
        label = owner.get(header.split(" (", 1)[0])
        per_label.setdefault(label, []).append(entry)
    return [(label, per_label[label] or None) for label in labels]
