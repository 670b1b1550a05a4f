"""The engine, a module per job:

- ``planning``: the dependency graph minus what is cached;
- ``scheduler``: which task runs next (pure bookkeeping);
- ``job``: one task, anywhere: a ``Job`` in, an ``Outcome`` out (``execute``);
- ``run_loop``: one run (``RunLoop``): drives the scheduler and a runner, commits
  outcomes and keeps the run's record;
- ``claims``: the run's leases and heartbeat, so a task is computed once;
- ``run_process``: the detached process that owns a run;
- ``state``: a run's live state, as displays read it; ``follow``: that state
  mirrored from a run's record;
- ``handles``: ``Run``, what ``lab.submit`` and ``lab.runs()`` return.

Runners live in ``labnb.runners``. The engine knows no display.
"""
