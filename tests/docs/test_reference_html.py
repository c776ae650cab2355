"""The HTML reference without a browser: offline, phone-ready, searchable, bilingual, Markdown
rendered, with the Python API reference (`make docs-check` adds Chromium screenshots)."""

from .check_html import PAGE, static_problems


def test_reference_html_is_offline_and_complete():
    html = PAGE.read_text(encoding="utf-8")
    assert static_problems(html) == []
    assert "<code>cedx.ReportingClient</code>" in html and 'id="py-submit_monthly_report"' in html
    assert "<code>cedx.CedxError</code>" in html


def test_the_checks_catch_a_remote_asset_and_raw_markdown():
    html = PAGE.read_text(encoding="utf-8")
    assert static_problems(html.replace("</head>", '<script src="https://cdn.example.com/x.js"></script></head>'))
    assert static_problems(html.replace("<main>", "<main><p>the **raw** text</p>"))
