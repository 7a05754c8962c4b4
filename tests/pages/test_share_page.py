"""The share page as a browser gets it (``Accept: text/html``): a readable, escaped transcript."""

from __future__ import annotations

import orjson

from alice_py.fake import CHAT_PREFIX
from alice_py.web.pages import rich_text
from tests.pages.conftest import Client, MakeClient

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
EVIL = '<script>window.__pwned = 1</script><img src=x onerror="alert(1)">'


async def shared(client: Client, prompt: str, questions: list[str]) -> str:
    """A turbo conversation with ``prompt``, asked ``questions``, stored: its share id."""
    created = await client.post("/chatgpt/createTurbo", data=orjson.dumps({"prompt": prompt}))
    conv_id = await created.text()
    for question in questions:
        answer = await client.post("/chatgpt/chat", data=question, headers={"conversation": conv_id})
        assert answer.status == 200, await answer.text()
    stored = await client.post("/chatgpt/store", headers={"conversation": conv_id})
    assert stored.status == 200
    return conv_id


async def test_a_browser_gets_a_transcript_with_everything_escaped(make_client: MakeClient) -> None:
    client = await make_client()
    share_id = await shared(client, f"Be nice. {EVIL}", [f"Hi {EVIL}"])
    response = await client.get(f"/chatgpt/share/{share_id}", headers=HTML)
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert page.count('class="who">Human<') == 1 and page.count('class="who">AI<') == 1
    # The prompt is folded away; the answer follows the question.
    assert "<details class=\"prompt\"><summary>Prompt</summary>" in page
    assert page.index("Be nice.") < page.index("Hi &lt;script") < page.index("Demo answer")
    # No script may run there, even if escaping missed something.
    assert "script-src" not in page and "default-src 'none'" in page


async def test_code_blocks_and_line_breaks_survive(make_client: MakeClient) -> None:
    client = await make_client()
    question = "Look:\n```python\nif a < b:\n    print('x')\n```\nthen `y`\nand a new line"
    share_id = await shared(client, "", [question])
    page = await (await client.get(f"/chatgpt/share/{share_id}", headers=HTML)).text()
    assert "<pre data-lang=\"python\"><code>if a &lt; b:\n    print(&#x27;x&#x27;)</code></pre>" in page
    assert "<p>then <code>y</code>\nand a new line</p>" in page
    assert "<details" not in page  # no prompt, nothing to unfold


async def test_programs_still_get_the_json_of_the_original(make_client: MakeClient) -> None:
    client = await make_client()
    share_id = await shared(client, "P", ["Q"])
    response = await client.get(f"/chatgpt/share/{share_id}")
    assert response.content_type == "application/json"
    assert await response.json() == {"Id": share_id, "Prompt": "P", "SentenceList": ["Q", CHAT_PREFIX + "Q"]}


async def test_the_page_styles_load_from_the_app(make_client: MakeClient) -> None:
    client = await make_client()
    share_id = await shared(client, "", ["Q"])
    page = await (await client.get(f"/chatgpt/share/{share_id}", headers=HTML)).text()
    assert 'href="../../static/app.css"' in page  # relative: /chatgpt/share/<id> → /static/app.css
    css = await client.get("/static/app.css")
    assert css.status == 200 and css.content_type == "text/css"


def test_rich_text_renders_fences_and_inline_code_and_nothing_else() -> None:
    assert rich_text("a **b** <i>c</i>") == "<p>a **b** &lt;i&gt;c&lt;/i&gt;</p>"
    assert rich_text("x\n\n\ny") == "<p>x\n\n\ny</p>"
    # A longer fence holds a shorter one; a fence needs no closing at the end (a cut-off answer).
    nested = rich_text("````md\n```\ninner\n```\n````")
    assert nested == '<pre data-lang="md"><code>```\ninner\n```</code></pre>'
    unclosed = rich_text("start\n```js\nlet a = 1")
    assert unclosed == '<p>start</p><pre data-lang="js"><code>let a = 1</code></pre>'
    # An info string that is not a language name is not put into an attribute.
    assert rich_text('```"><script>\nz\n```') == "<pre><code>z</code></pre>"
    assert rich_text("`<b>` and ``") == "<p><code>&lt;b&gt;</code> and ``</p>"
    assert rich_text("\r\n") == ""
