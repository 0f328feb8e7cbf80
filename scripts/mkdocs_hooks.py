"""MkDocs hooks (mkdocs.yml ``hooks:``) that keep the pages plain markdown for a code host.

- The two manuals that live beside their code, benchmarks/README.md and weights/README.md, join
  the site as ``benchmarks.md`` and ``weights.md``; a page's relative link to either (written as
  the code host resolves it, e.g. ``../benchmarks/README.md#run``) is pointed at its site page,
  and their own relative links into docs/ at the docs pages. Any other link leaving docs/ is left
  as written, so ``--strict`` fails on it.
- Every object an ``::: path`` line renders, and every public function, class and method it
  shows, must have a docstring: a missing one is a warning, so ``--strict`` fails on it.
- :class:`SphinxRoles`, a griffe extension (mkdocs.yml, mkdocstrings' ``extensions``), shows the
  docstrings' Sphinx roles (``:func:`stylize```) as code, as a reader of the source sees them.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path

import griffe
from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parent.parent
# Repository path -> the page's path in the site.
OUTSIDE = {"benchmarks/README.md": "benchmarks.md", "weights/README.md": "weights.md"}
LINK = re.compile(r"(\]\()([^)\s]+)(\))")
DIRECTIVE = re.compile(r"^::: ([\w.]+)", re.MULTILINE)
ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`~?([^`]+)`")
log = logging.getLogger(f"mkdocs.plugins.{__name__}")


def on_files(files, config):
    """Add the manuals outside docs/ as pages."""
    for repo_path, uri in OUTSIDE.items():
        files.append(File.generated(config, uri, abs_src_path=str(REPO / repo_path)))
    return files


def _repo_path(src_uri: str) -> str:
    """Where a page's source lies in the repository."""
    return next((repo for repo, uri in OUTSIDE.items() if uri == src_uri), f"docs/{src_uri}")


def _rewrite(target: str, repo_path: str, src_uri: str) -> str:
    """A link as the site needs it, for a link written relative to the page's repository file."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
        return target
    path, hash_, anchor = target.partition("#")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(repo_path), path))
    if resolved in OUTSIDE:
        site = OUTSIDE[resolved]
    elif resolved.startswith("docs/") and not repo_path.startswith("docs/"):
        site = resolved.removeprefix("docs/")
    else:
        return target
    return posixpath.relpath(site, posixpath.dirname(src_uri) or ".") + hash_ + anchor


def on_page_markdown(markdown, page, config, files):
    """Point links at the site's pages; check the docstrings of what ``:::`` renders."""
    src_uri = page.file.src_uri
    repo_path = _repo_path(src_uri)
    markdown = LINK.sub(lambda m: m[1] + _rewrite(m[2], repo_path, src_uri) + m[3], markdown)
    for path in DIRECTIVE.findall(markdown):
        for missing in _undocumented(path):
            log.warning(f"{src_uri}: {missing} has no docstring")
    return markdown


_PACKAGE = None


def _undocumented(path: str) -> list[str]:
    """``path`` and its public functions, classes and methods that lack a docstring."""
    global _PACKAGE
    if _PACKAGE is None:
        _PACKAGE = griffe.load(path.split(".")[0], search_paths=[str(REPO)], resolve_aliases=False)
    obj = _PACKAGE[path.split(".", 1)[1]] if "." in path else _PACKAGE
    missing = [] if obj.docstring else [obj.path]
    if obj.is_module or obj.is_class:
        for name, member in obj.members.items():
            if name.startswith("_") or member.is_alias or not (member.is_function or member.is_class):
                continue
            missing += _undocumented(member.path)
    return missing


class SphinxRoles(griffe.Extension):
    """``:func:`name``` in a docstring becomes ```name```: a name in code, not a link (the
    reference pages render only the public objects, so most names have nowhere to link to)."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)
