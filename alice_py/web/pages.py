"""HTML pages: the templates in ``web/templates`` filled with ``string.Template``.

Everything a user wrote (messages, prompts, ids) is escaped: ``render`` escapes
every value unless it is ``Html``, which only this module's builders make, from
escaped parts. Pages load their CSS and JavaScript from ``/static`` with relative
URLs, so the service also works behind a reverse proxy under a path prefix.

The share page has no script at all and says so in its Content Security Policy (the
HTTP header, and a ``<meta>`` copy), a second line of defence should escaping ever miss
something; ``frame-ancestors`` works only in the header.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from html import escape
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any, get_args

from aiohttp import web

from alice_py.db.shares import Share, ShareInfo
from alice_py.upstream.keypool import KeyState, KeyStatus

if TYPE_CHECKING:
    from alice_py.api.admin_pool import KeyRow

KEY_STATES: tuple[KeyStatus, ...] = get_args(KeyStatus)

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The playground and admin pages: their own files only, no inline script or style."""
SHARE_CSP = (
    "default-src 'none'; style-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""The share page: no script at all, its stylesheet, not to be framed (clickjacking)."""

SPEAKERS = ("Human", "AI")
"""Shares keep sentences only, human first; these names label them."""

_FENCE = re.compile(r" {0,3}(`{3,})[ \t]*([^`]*)")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_LANGUAGE = re.compile(r"[\w+#.-]{1,30}")


class Html(str):
    """Markup that is safe as it is: built by this module from escaped parts."""

    __slots__ = ()


def template(name: str) -> Template:
    """A template from the package (read on each call: pages are small and not on a hot path)."""
    path = resources.files("alice_py.web").joinpath("templates", name)
    return Template(path.read_text(encoding="utf-8"))


def render(name: str, **values: str | int | Html) -> str:
    """The template with every value escaped, except ``Html`` ones."""
    safe = {key: value if isinstance(value, Html) else escape(str(value)) for key, value in values.items()}
    return template(name).substitute(safe)


def html_response(
    body: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    no_store: bool = False,
    csp: str = PAGE_CSP,
    referrer: str = "same-origin",
) -> web.Response:
    """A page with the security headers every HTML answer of ours carries: its own files only,
    never framed, never sniffed, a ``Referer`` for our own requests only (with ``no-referrer``
    a browser would send ``Origin: null`` on the page's own POSTs)."""
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(
        {
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": referrer,
        }
    )
    if no_store:
        response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


# --- Markdown-ish text: fenced code blocks and `inline code`, everything else as written ---------


def _blocks(text: str) -> Iterator[tuple[bool, str, str]]:
    """``(is_code, language, body)`` in order. A fence closes with at least as many backticks
    and no info string (as in CommonMark); an unclosed block runs to the end (a streamed answer)."""
    lines: list[str] = []
    fence: str | None = None
    language = ""
    for line in text.split("\n"):
        match = _FENCE.fullmatch(line)
        if fence is None and match:
            yield False, "", "\n".join(lines)
            lines, fence, language = [], match[1], match[2].strip()
        elif fence is not None and match and match[1].startswith(fence) and not match[2].strip():
            yield True, language, "\n".join(lines)
            lines, fence = [], None
        else:
            lines.append(line)
    yield fence is not None, language, "\n".join(lines)


def _inline(text: str) -> str:
    # With one group, split() alternates text and code: text, code, text, …, text.
    parts = _INLINE_CODE.split(text)
    return "".join(
        f"<code>{escape(part)}</code>" if index % 2 else escape(part) for index, part in enumerate(parts)
    )


def rich_text(text: str) -> Html:
    """Escaped text: code fences as ``<pre><code>``, paragraphs keep their line breaks (CSS
    ``white-space: pre-wrap``), `inline code` as ``<code>``. Nothing else is interpreted."""
    out: list[str] = []
    for is_code, language, body in _blocks(text.replace("\r\n", "\n")):
        if is_code:
            lang = language.split()[0] if language else ""
            attr = f' data-lang="{escape(lang)}"' if _LANGUAGE.fullmatch(lang) else ""
            out.append(f"<pre{attr}><code>{escape(body)}</code></pre>")
        elif body.strip():
            out.append(f"<p>{_inline(body.strip(chr(10)))}</p>")
    return Html("".join(out))


# --- the share page -------------------------------------------------------------------------------


def _message(index: int, sentence: str) -> str:
    speaker = SPEAKERS[index % 2]
    return (
        f'<li class="msg {speaker.lower()}"><div class="who">{speaker}</div>'
        f'<div class="rich">{rich_text(sentence)}</div></li>'
    )


def share_page(share: Share) -> str:
    """A readable transcript of a share: the prompt folded away, then the sentences in turn."""
    prompt = share.prompt.strip()
    prompt_html = (
        f'<details class="prompt"><summary>Prompt</summary><div class="rich">{rich_text(prompt)}</div>'
        "</details>"
        if prompt
        else ""
    )
    messages = "\n".join(_message(index, sentence) for index, sentence in enumerate(share.sentences))
    count = len(share.sentences)
    return render(
        "share.html",
        id=share.id,
        count=f"{count} message{'' if count == 1 else 's'}",
        prompt=Html(prompt_html),
        messages=Html(messages or '<li class="empty">No messages yet.</li>'),
    )


def share_response(share: Share) -> web.Response:
    """The share page with its headers: stricter than the other pages' (no script, and its
    address, which is the key to the conversation, goes nowhere in a ``Referer``)."""
    return html_response(share_page(share), csp=SHARE_CSP, referrer="no-referrer")


def playground_page(auth_mode: str, version: str) -> str:
    """The playground; the server's auth mode is only the settings panel's starting choice."""
    return render("playground.html", auth_mode=auth_mode, version=version)


# --- the admin page -------------------------------------------------------------------------------


def root_of(path: str) -> str:
    """The relative URL of the site root from ``path`` (``/admin`` → ``./``, ``/admin/login`` → ``../``),
    so that the page's links survive a reverse proxy that mounts the service under a prefix."""
    return "../" * (path.count("/") - 1) or "./"


def duration(seconds: float) -> str:
    """``93784`` → ``1 d 2 h``: the two largest units, enough to read an uptime at a glance."""
    whole = max(int(seconds), 0)
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if whole >= size or (name == "s" and not parts):
            parts.append(f"{whole // size} {name}")
            whole %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def _percent(state: KeyState) -> str:
    rate = state.success_rate
    if rate is None:
        return "—"
    return f"{rate * 100:.0f} % of {state.window_calls}"


def _last_error(state: KeyState) -> str:
    if not state.last_error:
        return "—"
    request_id = state.last_error_request_id
    return state.last_error + (f" (upstream request {request_id})" if request_id else "")


def _key_row(root: str, csrf: str, row: KeyRow) -> str:
    key = row.state
    until = "—"
    if row.cooldown_until is not None:
        left = duration(key.cooldown_remaining + 0.999)
        until = f"{row.cooldown_until.strftime('%H:%M:%S')} UTC (in {left})"
    return (
        f'<tr data-key="{escape(row.id)}"><td class="key">{escape(key.masked)}</td>'
        f'<td><span class="state {key.state}">{key.state}</span></td>'
        f'<td class="reason">{escape(key.disabled_reason or "—")}</td>'
        f'<td class="until">{escape(until)}</td>'
        f'<td class="error">{escape(_last_error(key))}</td>'
        f'<td class="num">{key.requests}</td><td class="num">{key.failures}</td>'
        f'<td class="num">{escape(_percent(key))}</td><td class="num">{key.tokens}</td>'
        f'<td><form method="post" action="{root}admin/test-key">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="upstream" value="{escape(row.upstream)}">'
        f'<input type="hidden" name="key" value="{escape(row.id)}">'
        '<button type="submit">Test now</button></form></td></tr>'
    )


KEY_HEADINGS = (
    '<thead><tr><th>Key</th><th>State</th><th>Reason</th><th>Cooldown until</th><th>Last error</th>'
    '<th class="num">Requests</th><th class="num">Failures</th><th class="num">Success rate</th>'
    '<th class="num">Tokens</th><th></th></tr></thead>'
)


NO_KEYS = '<tr><td colspan="10" class="muted">No API keys configured.</td></tr>'


def _upstream_summary(rows: Sequence[KeyRow]) -> str:
    counts = {state: sum(1 for row in rows if row.state.state == state) for state in KEY_STATES}
    shown = [f"{count} {state}" for state, count in counts.items() if count]
    return f"{len(rows)} key{'s' if len(rows) != 1 else ''}" + "".join(f" · {part}" for part in shown)


def pool_html(root: str, csrf: str, rows: Sequence[KeyRow], upstreams: Sequence[str]) -> Html:
    """One table per upstream, in the router's order."""
    parts: list[str] = []
    for name in upstreams:
        mine = [row for row in rows if row.upstream == name]
        body = "\n".join(_key_row(root, csrf, row) for row in mine) or NO_KEYS
        parts.append(
            f'<section class="upstream" data-upstream="{escape(name)}">'
            f'<h3>{escape(name)} <span class="muted">{escape(_upstream_summary(mine))}</span></h3>'
            f'<div class="table-wrap"><table>{KEY_HEADINGS}<tbody>'
            f"{body}"
            "</tbody></table></div></section>"
        )
    return Html("\n".join(parts))


def _share_row(root: str, csrf: str, share: ShareInfo) -> str:
    link = f"{root}chatgpt/share/{share.id}"
    kind = "its own" if share.conversation_id is not None else "the conversation's"
    return (
        f'<tr><td class="key"><a href="{escape(link)}">{escape(share.id)}</a></td>'
        f"<td>{kind}</td><td class=\"num\">{share.messages}</td>"
        f"<td>{escape(share.updated_at.strftime('%Y-%m-%d %H:%M'))} UTC</td>"
        f'<td><form method="post" action="{root}admin/revoke-share">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="id" value="{escape(share.id)}">'
        '<button type="submit">Revoke</button></form></td></tr>'
    )


def _usage_rows(rows: Sequence[Mapping[str, Any]], nothing: str) -> Html:
    """One table row per upstream key or client (``usage.UsageBook.snapshot``)."""
    lines = [
        f'<tr><td class="key">{escape(str(row["name"]))}</td><td class="num">{row["prompt_tokens"]:,}</td>'
        f'<td class="num">{row["completion_tokens"]:,}</td><td class="num">{row["answers"]:,}</td></tr>'
        for row in rows
    ]
    return Html("\n".join(lines) or f'<tr><td colspan="4" class="muted">{escape(nothing)}</td></tr>')


def admin_off_page(root: str) -> str:
    return render("admin_off.html", root=root)


def admin_login_page(root: str, csrf: str, error: str = "") -> str:
    error_html = f'<p class="form-error" role="alert">{escape(error)}</p>' if error else ""
    return render("admin_login.html", root=root, csrf=csrf, error=Html(error_html))


def admin_dashboard_page(
    root: str,
    csrf: str,
    *,
    version: str,
    uptime: float,
    conversations: int,
    shares: int,
    key_rows: Sequence[KeyRow],
    upstreams: Sequence[str],
    recent_shares: Sequence[ShareInfo] = (),
    usage: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    notice: str = "",
) -> str:
    share_rows = "\n".join(_share_row(root, csrf, share) for share in recent_shares)
    listed = f"The {len(recent_shares)} most recent of {shares}. " if len(recent_shares) < shares else ""
    usable = sum(1 for row in key_rows if row.state.state != "disabled")
    notice_html = f'<p class="notice" role="status" id="notice">{escape(notice)}</p>' if notice else ""
    return render(
        "admin.html",
        root=root,
        csrf=csrf,
        version=version,
        uptime=duration(uptime),
        conversations=conversations,
        shares=shares,
        usable=f"{usable} / {len(key_rows)}",
        pool=pool_html(root, csrf, key_rows, upstreams),
        notice=Html(notice_html),
        share_rows=Html(share_rows or '<tr><td colspan="5" class="muted">No shares.</td></tr>'),
        shares_listed=listed,
        usage_key_rows=_usage_rows((usage or {}).get("upstream_keys", ()), "No tokens used yet."),
        usage_client_rows=_usage_rows((usage or {}).get("clients", ()), "No tokens used yet."),
    )
