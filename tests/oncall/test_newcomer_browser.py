"""What a newcomer tripped over, in a real browser: desktop and a 390 px phone, axe-core."""

from __future__ import annotations

from playwright.sync_api import Page


def wrapper_overflow(page: Page) -> int:
    """How many CSS pixels the widest table wrapper scrolls sideways (0 when it fits)."""
    found: int = page.evaluate(
        "() => Math.max(0, ...[...document.querySelectorAll('.table-wrap')]"
        ".map(e => e.scrollWidth - e.clientWidth))"
    )
    return found


def broken_words(page: Page, selector: str = ".op-name, .holiday-name, thead th") -> list[str]:
    """Words of names, holidays and headers that the layout split over two lines."""
    found: list[str] = page.evaluate(
        """(selector) => {
            const broken = [];
            for (const element of document.querySelectorAll(selector)) {
                const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    for (const match of node.data.matchAll(/\\S+/g)) {
                        const range = document.createRange();
                        range.setStart(node, match.index);
                        range.setEnd(node, match.index + match[0].length);
                        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                        if (tops.size > 1) broken.push(match[0]);
                    }
                }
            }
            return broken;
        }""",
        selector,
    )
    return found
