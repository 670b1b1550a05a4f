"""Text contrast of what a widget shows, measured in the page (WCAG 2 ratios).

``low_contrast(locator)`` walks every visible element under the locator that
holds text (and every text input), takes its computed colour and the colour
it is drawn on (its own background and its ancestors', semi-transparent ones
composited, as ``color-mix()`` tints are), and returns those under 4.5:1.
Disabled controls (``aria-disabled``) are left out: WCAG 1.4.3 exempts
inactive components, and they are dimmed on purpose.
"""

from __future__ import annotations

from typing import Any

MINIMUM = 4.5

_SCRIPT = """
(root, minimum) => {
  const parse = (text) => {
    let m = text.match(/^rgba?\\(([^)]+)\\)$/);
    if (m) {
      const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = text.match(/^color\\(srgb ([^)]+)\\)$/);
    if (m) {
      const p = m[1].split(/[ \\/]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    return null;
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    const layers = [];
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c && c[3] > 0) {
        layers.push(c);
        if (c[3] >= 1) break;
      }
    }
    let result = [255, 255, 255, 1];
    for (const layer of layers.reverse()) result = over(layer, result);
    return result;
  };
  const opacity = (el) => {
    let value = 1;
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      value *= Number(getComputedStyle(node).opacity);
    }
    return value;
  };
  const found = [];
  for (const el of [root, ...root.querySelectorAll("*")]) {
    const ownText = [...el.childNodes].some(
      (n) => n.nodeType === 3 && n.textContent.trim(),
    );
    const field = (el.tagName === "INPUT" && el.type !== "checkbox" && el.value) ||
      el.tagName === "SELECT";
    if (!ownText && !field) continue;
    if (el.closest("[aria-disabled='true'], .labnb-sr-only, [hidden]")) continue;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!box.width || !box.height || style.visibility === "hidden") continue;
    const bg = background(el);
    const fg = parse(style.color);
    if (!fg) continue;
    const shown = over([fg[0], fg[1], fg[2], fg[3] * opacity(el)], bg);
    const [a, b] = [luminance(shown), luminance(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < minimum) {
      const text = field ? el.value ?? "" : el.textContent.trim();
      found.push({
        text: text.slice(0, 40),
        element: `${el.tagName.toLowerCase()}.${[...el.classList].join(".")}`,
        ratio: Math.round(ratio * 100) / 100,
        color: style.color,
        background: `rgb(${bg.slice(0, 3).map(Math.round).join(", ")})`,
      });
    }
  }
  return found;
}
"""


def low_contrast(locator: Any, minimum: float = MINIMUM) -> list[dict[str, Any]]:
    """Every visible text under ``locator`` drawn under ``minimum``:1, described."""
    return locator.evaluate(_SCRIPT, minimum)
