"""`make docs-check`: the HTML reference in headless Chromium at desktop and phone widths.

Writes screenshots (desktop 1280x900, phone 390x844) to the output directory and checks what a
static look can: no remote asset, a viewport for phones, offline search, Markdown rendered.
Chromium (`apt-get install chromium`) is needed for the screenshots only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "sdk" / "cedx" / "generated" / "reference.html"
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
VIEWS = ("", "-python-api")  # the top, and the Python API reference (the page cut to start there)


def static_problems(html: str) -> list[str]:
    """What the page must (not) contain, checked without a browser (also run by pytest)."""
    import re

    problems = []
    remote = re.findall(r'(?:src|href)\s*=\s*["\'](?:https?:)?//[^"\']+', html)
    if remote:
        problems.append(f"remote assets: {remote[:3]}")
    if re.search(r"@import|url\(\s*['\"]?https?:", html):
        problems.append("remote CSS")
    if 'name="viewport"' not in html or "@media (max-width" not in html:
        problems.append("no phone layout (viewport meta and a max-width media query)")
    if 'id="q"' not in html or "<script>" not in html:
        problems.append("no offline search")
    if 'data-lang="zh"' not in html or 'data-lang="en"' not in html:
        problems.append("no language switch")
    if 'id="python-api"' not in html:
        problems.append("no Python API reference")
    if re.search(r"<p>[^<]*\*\*[^<]+\*\*", html):
        problems.append("unrendered Markdown (**bold**) in a paragraph")
    return problems


def chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def screenshots(out: Path) -> list[Path]:
    browser = chromium()
    if browser is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    for name, (w, h) in SIZES.items():
        for view in VIEWS:
            target = out / f"reference-{name}{view}.png"
            with tempfile.TemporaryDirectory() as tmp:
                page = PAGE
                if view:  # headless screenshots ignore #fragments: cut the page to start at the section
                    html = PAGE.read_text(encoding="utf-8")
                    start, end = html.index("<main>") + len("<main>"), html.index('<h2 id="python-api">')
                    page = Path(tmp) / "page.html"
                    page.write_text(html[:start] + html[end:], encoding="utf-8")
                subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                f"--user-data-dir={tmp}/profile", "--no-first-run", "--disable-background-networking",
                                f"--window-size={w},{h}", f"--screenshot={target}", page.as_uri()],
                               check=True, capture_output=True, timeout=120)
            shots.append(target)
    return shots


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else ROOT / "build" / "docs-check")
    problems = static_problems(PAGE.read_text(encoding="utf-8"))
    for p in problems:
        print(f"docs-check: {p}", file=sys.stderr)
    for shot in screenshots(out):
        print(f"screenshot {shot} ({shot.stat().st_size} bytes)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
