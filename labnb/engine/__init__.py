"""The engine: planning (what is cached), the pure scheduler, the run loop
(``running``), one task's execution, a run's live state and its handle
(``Run``). Runners live in ``labnb.runners``. The engine knows no display.
"""
