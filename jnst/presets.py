"""The presets as a small table for people: each preset's differences from ``default``, and
what it is and costs (``jnst presets``)."""

from __future__ import annotations

import dataclasses
import textwrap

from jnst import config as config_lib


def _format_value(value: object) -> str:
    """A config value as a user would type it: ``0.02``, ``adam``, ``block1_conv1:0.2 ...``."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        items = [":".join(map(_format_value, v)) if isinstance(v, tuple) else _format_value(v) for v in value]
        return " ".join(items) or "none"
    return "auto" if value is None else str(value)


def differences(name: str) -> list[str]:
    """``field=value`` for each StyleConfig field where preset ``name`` differs from ``default``."""
    cfg, default = config_lib.preset(name), config_lib.preset("default")
    return [
        f"{field.name}={_format_value(getattr(cfg, field.name))}"
        for field in dataclasses.fields(cfg)
        if getattr(cfg, field.name) != getattr(default, field.name)
    ]


def table(width: int = 100, diff_width: int = 36) -> str:
    """One row per preset: its name, what differs from ``default`` (one field a line, a long one
    wrapped at ``diff_width``) and its description, wrapped to fit ``width`` columns."""
    rows = [("preset", ["differs from default"], "what it is")]
    for name, (_, doc) in config_lib.PRESETS.items():
        diffs = [line for d in differences(name) for line in textwrap.wrap(d, diff_width, subsequent_indent="  ")]
        rows.append((name, diffs or ["\N{EM DASH}"], doc))
    name_w = max(len(name) for name, _, _ in rows)
    diff_w = max(len(d) for _, diffs, _ in rows for d in diffs)
    doc_w = max(30, width - name_w - diff_w - 4)
    lines = []
    for i, (name, diffs, doc) in enumerate(rows):
        docs = textwrap.wrap(doc, doc_w, break_on_hyphens=False)
        for j in range(max(len(diffs), len(docs))):
            cells = (name if j == 0 else "", diffs[j] if j < len(diffs) else "", docs[j] if j < len(docs) else "")
            lines.append(f"{cells[0]:<{name_w}}  {cells[1]:<{diff_w}}  {cells[2]}".rstrip())
        if i == 0:
            lines.append(f"{'-' * name_w}  {'-' * diff_w}  {'-' * doc_w}")
        elif i < len(rows) - 1:
            lines.append("")
    return "\n".join(lines)
