"""The line above a search's run widget: trials so far and the best value.

A plain ``ipywidgets.HTML`` fed from Python (the run widget below it is the
usual ``RunView``); its text form, which the notebook saves and nbconvert
shows, is the same line as ``Search.summary()``.
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Any

import ipywidgets

if TYPE_CHECKING:
    from .handle import Search

log = logging.getLogger("labnb.widgets")


class SearchHeader(ipywidgets.HTML):
    def __init__(self, search: Search) -> None:
        super().__init__()
        self._search = search
        self._text = ""
        self.refresh()

    def refresh(self) -> None:
        try:
            text = self._search.summary()
        except Exception:  # a busy study: the next look will do
            log.warning("labnb could not read the study of a search", exc_info=True)
            return
        if text != self._text:
            self._text = text
            self.value = f"<div class='labnb-search'><b>labnb</b> {html.escape(text)}</div>"

    def follow(self, handle: Any = None, interval: float = 0.5) -> None:
        """Refresh until the search ends, then re-send the display once (the saved text)."""
        while not self._search.wait(interval):
            self.refresh()
        self.refresh()
        if handle is not None:
            handle.update(self)

    def __repr__(self) -> str:
        return f"labnb {self._text}"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = repr(self)
        return bundle
