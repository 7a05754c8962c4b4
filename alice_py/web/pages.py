"""HTML pages: for now, the minimal page of a shared conversation.

Shares are user input, so every text is escaped. The page is plain on purpose:
the real template replaces ``share_page`` and nothing else.
"""

from __future__ import annotations

from html import escape

from alice_py.db.shares import Share


def share_page(share: Share) -> str:
    """A readable transcript: the prompt, then the sentences, human and AI in turn."""
    speakers = ("Human", "AI")
    rows = "\n".join(
        f'<div class="{speakers[index % 2].lower()}"><b>{speakers[index % 2]}:</b> '
        f'<span style="white-space: pre-wrap">{escape(sentence)}</span></div>'
        for index, sentence in enumerate(share.sentences)
    )
    prompt = escape(share.prompt)
    return (
        "<!doctype html>\n"
        f'<html><head><meta charset="utf-8"><title>Shared conversation {escape(share.id)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>\n'
        f"<body><h1>Shared conversation {escape(share.id)}</h1>\n"
        f'<p style="white-space: pre-wrap"><i>{prompt}</i></p>\n{rows}\n</body></html>\n'
    )
