"""MkDocs hook: the host contract page, written from ``panel_ssl_plugin/hookspecs.py`` at build.

``docs/hosts/contract.md`` holds the prose a person writes (versions, the deprecation rule); its
markers become what the code says: the module's introduction, the records that cross the
boundary and every hook with its signature, who implements it, whether the first answer wins,
whether it is deprecated, and its docstring. A hook added, changed or deprecated in
``hookspecs.py`` changes the page on the next build; nothing is copied by hand.

The docstrings are written for ``help()`` in the style of pytest's and datasette's hookspecs
(``literal``, :class:`Record`, ``Example::`` blocks); :func:`markdown_of` turns that small part of
reStructuredText into Markdown.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

from panel_ssl_plugin import hookspecs

PAGE = "hosts/contract.md"
INTRO, VERSION = "<!-- contract:intro -->", "<!-- contract:version -->"
RECORDS, HOOKS = "<!-- contract:records -->", "<!-- contract:hooks -->"
FAMILIES = (
    ("panel_", "Host → plugin", "the plugin; the host calls it"),
    ("host_", "Plugin → host", "the host; a plugin calls it"),
    ("ssl_", "Notifications and extensions", "anyone; the SSL plugin calls it"),
)
SPEC_ATTRIBUTE = f"{hookspecs.PROJECT}_spec"  # where pluggy keeps a hookspec's options


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs calls this for every page; only the contract page is filled in."""
    if page.file.src_uri != PAGE:
        return markdown
    missing = [m for m in (INTRO, VERSION, RECORDS, HOOKS) if m not in markdown]
    if missing:
        raise ValueError(f"{PAGE} lost its markers {missing}: the contract would not be shown")
    return (
        markdown.replace(INTRO, markdown_of(hookspecs.__doc__ or ""))
        .replace(VERSION, f"`{hookspecs.CONTRACT_VERSION}`")
        .replace(RECORDS, records_markdown())
        .replace(HOOKS, hooks_markdown())
    )


def hook_names() -> list[str]:
    """Every hookspec, in the order ``hookspecs.py`` defines them."""
    return [
        name
        for name, obj in vars(hookspecs).items()
        if inspect.isfunction(obj) and hasattr(obj, SPEC_ATTRIBUTE)
    ]


def records() -> list[type]:
    return [
        obj
        for obj in vars(hookspecs).values()
        if dataclasses.is_dataclass(obj) and obj.__module__ == hookspecs.__name__
    ]


def records_markdown() -> str:
    return "\n\n".join(record_markdown(record) for record in records())


def record_markdown(record: type) -> str:
    rows = ["| field | type | default |", "| --- | --- | --- |"]
    for item in dataclasses.fields(record):
        rows.append(f"| `{item.name}` | `{item.type}` | {default_of(item)} |")
    heading = f"### `{record.__name__}` {{#{record.__name__}}}"
    return "\n\n".join([heading, markdown_of(doc_of(record)), "\n".join(rows)])


def default_of(item: dataclasses.Field) -> str:
    if item.default is not dataclasses.MISSING:
        return f"`{item.default!r}`"
    if item.default_factory is not dataclasses.MISSING:
        return f"`{item.default_factory()!r}`"
    return "required"


def hooks_markdown() -> str:
    sections = []
    for prefix, title, implemented_by in FAMILIES:
        names = [name for name in hook_names() if name.startswith(prefix)]
        sections.append(f"## {title}\n\nEach hook below is implemented by {implemented_by}.")
        sections += [hook_markdown(getattr(hookspecs, name)) for name in names]
    return "\n\n".join(sections)


def hook_markdown(function: Callable) -> str:
    name, options = function.__name__, getattr(function, SPEC_ATTRIBUTE)
    arguments = ", ".join(inspect.signature(function).parameters)
    parts = [
        f"### `{name}({arguments})` {{#{name}}}",
        f"```python\ndef {name}{typed_signature(function)}\n```",
        *deprecations(options),
    ]
    if options["firstresult"]:
        parts.append(
            "**First answer wins:** the first implementation that returns a value decides."
        )
    parts.append(markdown_of(doc_of(function)))
    return "\n\n".join(parts)


def typed_signature(function: Callable) -> str:
    """The signature as ``hookspecs.py`` writes it (its annotations are strings, unquoted here)."""
    signature = inspect.signature(function)
    arguments = ", ".join(
        f"{p.name}: {p.annotation}" if p.annotation is not p.empty else p.name
        for p in signature.parameters.values()
    )
    returns = signature.return_annotation
    return f"({arguments})" + (f" -> {returns}" if returns is not signature.empty else "")


def deprecations(options: dict[str, Any]) -> Iterator[str]:
    """pluggy warns a plugin implementing a deprecated hook or argument; the page says so too."""
    if options.get("warn_on_impl"):
        yield admonition("Deprecated", str(options["warn_on_impl"]))
    for argument, warning in (options.get("warn_on_impl_args") or {}).items():
        yield admonition(f"Argument {argument} deprecated", str(warning))


def admonition(title: str, text: str) -> str:
    return f'!!! warning "{title}"\n\n' + textwrap.indent(text, "    ")


def doc_of(obj: Any) -> str:
    return inspect.getdoc(obj) or ""


ROLE = re.compile(r":(?:class|func|meth|attr|data):`~?([\w.]+)`")
LITERAL = re.compile(r"``(.+?)``")


def markdown_of(docstring: str) -> str:
    """The docstring's reStructuredText, as Markdown: ``x`` and :class:`X` become code (a link
    when ``X`` is on the page), and a paragraph ending in ``::`` introduces a Python block."""
    known = {*hook_names(), *(record.__name__ for record in records())}
    out: list[str] = []
    lines = docstring.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.rstrip().endswith("::"):
            out.append(inline(line, known))
            continue
        out.append(inline(line.rstrip()[:-2].rstrip() + ":", known))
        block, index = indented_block(lines, index)
        out += ["", "```python", *textwrap.dedent("\n".join(block)).splitlines(), "```", ""]
    return "\n".join(out).strip()


def indented_block(lines: list[str], index: int) -> tuple[list[str], int]:
    """The literal block after ``::``: blank lines, then every line indented or blank."""
    while index < len(lines) and not lines[index].strip():
        index += 1
    block = []
    while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
        block.append(lines[index])
        index += 1
    while block and not block[-1].strip():
        block.pop()
    return block, index


def inline(line: str, known: set[str]) -> str:
    def role(match: re.Match) -> str:
        target = match.group(1)
        short = target.rsplit(".", 1)[-1]
        return f"[`{short}`](#{short})" if short in known else f"`{target}`"

    return LITERAL.sub(r"`\1`", ROLE.sub(role, line))
