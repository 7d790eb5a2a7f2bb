"""References from documents to pictures (codesearch.media.refs) and the text a text-only
embedder sees for a picture (codesearch.media.context)."""

from __future__ import annotations

import time

from codesearch.media.context import context_text, name_words
from codesearch.media.formats import Visual
from codesearch.media.refs import ImageRef, find_refs, is_document, resolve_target


def targets(refs: list[ImageRef]) -> list[str]:
    return [r.target for r in refs]


def by_target(refs: list[ImageRef]) -> dict[str, ImageRef]:
    return {r.target: r for r in refs}


# ---------------------------------------------------------------------------- resolution


def test_is_document() -> None:
    for path in ["README.md", "docs/a.markdown", "x.RST", "site/index.html", "b.htm"]:
        assert is_document(path), path
    for path in ["notes.txt", "a.py", "img.png", "md", "a.mdx"]:
        assert not is_document(path), path


def test_resolve_target() -> None:
    doc = "docs/guide/index.md"
    cases = {
        "img/a.png": "docs/guide/img/a.png",
        "./img/a.png": "docs/guide/img/a.png",
        "../img/a.png": "docs/img/a.png",
        "../../a.png": "a.png",
        "../../../a.png": None,  # climbs out of the repository
        "/img/a.png": "img/a.png",  # absolute from the repository root
        "/../a.png": None,
        "img/login%20screen.png": "docs/guide/img/login screen.png",
        "img/a.png?raw=true": "docs/guide/img/a.png",
        "spec.pdf#page=3": "docs/guide/spec.pdf",
        "img/%23hash.png": "docs/guide/img/#hash.png",  # decoded after the fragment is cut
        "<img/with space.svg>": "docs/guide/img/with space.svg",
        "img//b.PNG": "docs/guide/img/b.PNG",
        "img\\win.png": "docs/guide/img/win.png",
        "http://example.com/a.png": None,
        "https://example.com/a.png": None,
        "//cdn.example.com/a.png": None,
        "data:image/png;base64,iVBOR": None,
        "mailto:a@b.c": None,
        "img/a.txt": None,  # not visual
        "": None,
        "#top": None,
    }
    for raw, expected in cases.items():
        assert resolve_target(doc, raw) == expected, raw
    assert resolve_target("README.md", "../a.png") is None
    assert resolve_target("README.md", "a.png") == "a.png"


# ---------------------------------------------------------------------------- Markdown

GUIDE_MD = """\
# User guide

Welcome to the app. This guide walks through the screens.

## Logging in

The login form asks for a user name and a password.
Two-factor codes are entered on the next screen.

![Login screen](img/login-screen.png "The login form")

After login the [dashboard overview](../design/Dash%20board.pdf#page=2) opens.

Settings
--------

The settings page has tabs ![settings tabs][tabs] for each area.

[tabs]: ./img/settings.png 'One tab per area'
[Arch]: <../arch/system arch.svg>

See the architecture: ![][arch] and ![Arch].

<p align="center"><img src="/assets/logo.png" alt="Logo &amp; name" title='Company logo'></p>

```markdown
![not an image](img/in-code.png)
```

Inline `![code](img/in-span.png)` is code too. <!-- ![hidden](img/comment.png) -->

[![build](https://ci.example.com/badge.svg)](https://ci.example.com)
[![Thumbnail](img/thumb.png)](img/full.png)
![escape](../../../../etc/passwd.png) ![remote](https://example.com/x.png)
![data](data:image/png;base64,AAAA) [not visual](notes.txt)
"""


def test_markdown_references() -> None:
    refs = find_refs("docs/guide/index.md", GUIDE_MD)
    assert targets(refs) == [
        "docs/guide/img/login-screen.png",
        "docs/design/Dash board.pdf",
        "docs/guide/img/settings.png",
        "docs/arch/system arch.svg",
        "assets/logo.png",
        "docs/guide/img/full.png",
        "docs/guide/img/thumb.png",
    ]
    found = by_target(refs)
    login = found["docs/guide/img/login-screen.png"]
    assert (login.doc_path, login.line) == ("docs/guide/index.md", 10)
    assert login.alt == "Login screen — The login form"
    assert login.section == "User guide > Logging in"
    assert login.context.startswith("User guide > Logging in: The login form asks for")
    assert "Two-factor codes" in login.context
    assert "Welcome" not in login.context  # another section

    pdf = found["docs/design/Dash board.pdf"]
    assert (pdf.alt, pdf.line) == ("dashboard overview", 12)

    tabs = found["docs/guide/img/settings.png"]
    assert tabs.alt == "settings tabs — One tab per area"
    assert tabs.section == "User guide > Settings"  # a setext heading
    assert tabs.line == 17
    assert "settings page has tabs" in tabs.context

    arch = found["docs/arch/system arch.svg"]
    assert arch.line == 22  # the first use; the label is case-insensitive

    logo = found["assets/logo.png"]
    assert logo.alt == "Logo & name — Company logo"
    assert logo.line == 24

    assert found["docs/guide/img/full.png"].alt == "Thumbnail"
    assert found["docs/guide/img/thumb.png"].line == 33


def test_markdown_context_is_clean_and_capped() -> None:
    long_paragraph = " ".join(["word"] * 400)
    text = f"# Title\n\n**Bold** and _em_ `code` [link](x.md).\n\n![a](a.png)\n\n{long_paragraph}\n"
    (ref,) = find_refs("README.md", text)
    assert ref.context.startswith("Title: Bold and em code link. a word word")
    assert len(ref.context) <= 601
    assert "**" not in ref.context and "](" not in ref.context
    (ref,) = find_refs("README.md", "no heading here\n\n![diagram](d.png)\n")
    assert (ref.section, ref.context) == ("", "no heading here diagram")
    text = "# Real\n<!--\n# Fake heading\n\nsecret notes\n-->\nShown text.\n![d](d.png)\n"
    (ref,) = find_refs("README.md", text)
    assert (ref.section, ref.context) == ("Real", "Real: Shown text. d")


def test_markdown_crlf_and_html_heading() -> None:
    text = '<h1 align="center">My Tool</h1>\r\n\r\nA tool.\r\n\r\n![shot](s.jpg)\r\n'
    (ref,) = find_refs("README.md", text)
    assert (ref.line, ref.section, ref.target) == (5, "My Tool", "s.jpg")


# ---------------------------------------------------------------------------- reStructuredText

GUIDE_RST = """\
==========
Admin docs
==========

Overview
--------

The system has three parts.

.. figure:: ../img/arch.svg
   :alt: Architecture diagram
   :width: 80%

   The indexer feeds the store.

   A legend that is not the caption.

Badges |logo| appear inline, and |logo| again.

.. |logo| image:: /static/logo.png
   :alt: the logo

Read the `design document <files/design.pdf>`_ or :download:`the slides <files/slides.pdf>`.

Example::

    .. image:: literal/not-this.png

.. code-block:: rst

   .. image:: code/not-this.png

Details
~~~~~~~

.. image:: shot%201.png
"""


def test_rst_references() -> None:
    refs = find_refs("docs/admin/index.rst", GUIDE_RST)
    assert targets(refs) == [
        "docs/img/arch.svg",
        "static/logo.png",  # used twice on one line: one reference
        "docs/admin/files/design.pdf",
        "docs/admin/files/slides.pdf",
        "docs/admin/shot 1.png",
    ]
    arch, logo, design, slides, shot = refs
    assert arch.line == 10
    assert arch.alt == "Architecture diagram — The indexer feeds the store."
    assert arch.section == "Admin docs > Overview"
    assert arch.context.startswith("Admin docs > Overview: The system has three parts.")
    assert "legend" in arch.context
    assert ".." not in arch.context and ":alt:" not in arch.context
    assert (logo.line, logo.alt) == (18, "the logo — logo")  # where it is used
    assert (design.line, design.alt, slides.alt) == (23, "design document", "the slides")
    assert (shot.line, shot.section) == (36, "Admin docs > Overview > Details")


def test_rst_substitution_used_in_several_places() -> None:
    text = (
        "Title\n=====\n\nFirst |diagram| here.\n\nSection\n-------\n\nSecond |diagram|.\n\n"
        ".. |diagram| image:: d.png\n"
    )
    refs = find_refs("a.rst", text)
    assert [(r.line, r.section) for r in refs] == [(4, "Title"), (9, "Title > Section")]
    assert all(r.target == "d.png" and r.alt == "diagram" for r in refs)
    unused = find_refs("a.rst", ".. |pic| image:: p.png\n   :alt: a picture\n")
    assert [(r.line, r.alt) for r in unused] == [(1, "a picture — pic")]


# ---------------------------------------------------------------------------- HTML

PAGE_HTML = """\
<!doctype html>
<html><head><title>Manual</title>
<style>.x { background: url(img/style.png) }</style>
<script>const s = '<img src="img/script.png">';</script></head>
<body>
<h1>Manual</h1>
<p>Welcome to the manual.</p>
<h2 id="screens">The <em>screens</em></h2>
<p>The main window shows the list of items.</p>
<figure>
  <img src="shots/main.png" alt="Main window" title="main">
  <figcaption>The main window with <b>three</b> panes</figcaption>
</figure>
<p>See the <a href="spec.pdf" title="Specification">full spec</a>,
<object data="diagrams/flow.svg"></object> and <embed src="/files/e.pdf">.</p>
<!-- <img src="img/commented.png"> -->
<picture><source srcset="dark.png 1x, dark@2x.png 2x"><img src="https://x/y.png" alt="x"></picture>
<a href="other.html">not visual</a> <img data-src="lazy.webp" alt="Lazy">
</body></html>
"""


def test_html_references() -> None:
    refs = find_refs("site/manual.html", PAGE_HTML)
    assert targets(refs) == [
        "site/shots/main.png",
        "site/spec.pdf",
        "site/diagrams/flow.svg",
        "files/e.pdf",
        "site/dark.png",
        "site/dark@2x.png",
        "site/lazy.webp",
    ]
    found = by_target(refs)
    main = found["site/shots/main.png"]
    assert main.alt == "Main window — main — The main window with three panes"
    assert main.line == 11
    assert main.section == "Manual > The screens"
    assert main.context.startswith("Manual > The screens: The main window shows the list")
    assert found["site/spec.pdf"].alt == "full spec — Specification"
    assert found["site/lazy.webp"].alt == "Lazy"
    assert found["site/diagrams/flow.svg"].line == 15


def test_markdown_destination_forms() -> None:
    text = "![a](<img/with space.png>) ![b](img/paren\\(1\\).png) ![c](img/(2).png 'T')\n"
    refs = find_refs("README.md", text)
    assert [(r.target, r.alt) for r in refs] == [
        ("img/with space.png", "a"),
        ("img/paren(1).png", "b"),
        ("img/(2).png", "c — T"),
    ]


def test_adversarial_documents_stay_fast() -> None:
    """Bounded spans everywhere: no input makes the readers quadratic."""
    ref = {"a.md": "![a](a.png)\n", "a.rst": ".. image:: a.png\n", "a.html": "<img src=a.png>\n"}
    bodies = [
        "[" * 40_000,
        "![" * 20_000,
        "<img " * 8_000,
        '<img src="' * 4_000,
        "<h2>" * 10_000,
        "<!--" * 10_000,
        " \n" * 20_000,
        "> \n" * 20_000,
        "`<" * 20_000,
        "<figure><img src=b.png>" * 2_000,
    ]
    start = time.perf_counter()
    for body in bodies:
        for doc, line in ref.items():
            assert find_refs(doc, line + body + "\n" + line)
    assert time.perf_counter() - start < 4.0


def test_garbage_never_raises() -> None:
    for text in ["", "\n\n", "![", "![a](", "[x]:", "<img", "<img src=", ".. image::", "|a|", "`"]:
        for doc in ["a.md", "a.rst", "a.html", "a.txt"]:
            assert find_refs(doc, text) == []
    assert find_refs("notes.txt", "![a](a.png)") == []


# ---------------------------------------------------------------------------- context text


def test_name_words() -> None:
    assert name_words("docs/img/login-screen.png") == "login screen"
    assert name_words("loginScreen.PNG") == "login screen"
    assert name_words("login_screen_v2.jpeg") == "login screen v 2"
    assert name_words("HTTPServer.svg") == "http server"
    assert name_words("arch.diagram.final.pdf") == "arch diagram final"
    assert name_words("Über Übersicht.png") == "über übersicht"
    assert name_words("") == ""


def _refs() -> list[ImageRef]:
    md = find_refs("docs/guide.md", GUIDE_MD.replace("img/login-screen.png", "../login.png"))
    other = ImageRef(
        "README.md", "login.png", "Sign-in page", "Quick start: run the app and sign in.", 7, ""
    )
    return [*md, other, other]


def test_context_text() -> None:
    visual = Visual("login.png", "image", 0, 800, 600, "h")
    refs = [r for r in _refs() if r.target == "login.png"]
    text = context_text(visual, refs)
    assert text.splitlines() == [
        "image login.png",
        "login",
        "alt: Sign-in page",
        "in README.md: Quick start: run the app and sign in.",
        "alt: Login screen — The login form",
        "in docs/guide.md (User guide > Logging in): The login form asks for a user name and a "
        "password. Two-factor codes are entered on the next screen. Login screen After login "
        "the dashboard overview opens.",
    ]
    assert context_text(visual, list(reversed(refs))) == text  # deterministic


def test_context_text_for_a_pdf_page_with_folders_and_own_text() -> None:
    visual = Visual("docs/design_docs/systemDesign.pdf", "pdf-page", 3, 612, 792, "h:3")
    text = context_text(visual, [], own_text="  Storage\n layer   overview ")
    assert text.splitlines() == [
        "PDF page 3 of docs/design_docs/systemDesign.pdf",
        "system design",
        "folders: docs / design docs",
        "text: Storage layer overview",
    ]


def test_context_text_is_capped_and_keeps_at_most_eight_refs() -> None:
    visual = Visual("a.png", "image", 0, 100, 100, "h")
    refs = [
        ImageRef(f"doc{i:02}.md", "a.png", f"alt {i}", "para " + "x" * 300, 1, "")
        for i in range(20)
    ]
    text = context_text(visual, refs, own_text="y " * 2000)
    assert len(text) <= 2000
    assert "doc00.md" in text and "doc08.md" not in text
    short = [ImageRef(r.doc_path, r.target, r.alt, "short", r.line) for r in refs]
    text = context_text(visual, short)
    assert "doc07.md" in text and "doc08.md" not in text
    assert text.count("in doc") == 8
