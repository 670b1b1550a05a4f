"""A run on a storage whose disk fills up, for tests/test_nothing_lost.py: run
inside a mount namespace of its own with a small tmpfs at ``sys.argv[1]`` (it
goes away with the namespace, however this ends). Prints what it saw as JSON."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from nothing_lost_tasks import PrintsMuch, Sized

import labnb

MB = 1 << 20


def fill(path: Path, room: int) -> None:
    """Fill the disk with ``path``, then give back ``room`` bytes."""
    with open(path, "wb", buffering=0) as file:
        try:
            while file.write(b"\0" * 65536):
                pass
        except OSError:
            pass
    os.truncate(path, max(0, path.stat().st_size - room))


def temporaries(storage: Path) -> list[str]:
    return [str(path) for path in storage.rglob(".tmp-*")]


def main() -> None:
    disk, tally = Path(sys.argv[1]), sys.argv[2]
    storage = disk / "s"
    seen: dict[str, object] = {}
    lab = labnb.Lab(
        storage=storage, max_workers=1, continue_on_failure=True, context={"tally": tally}
    )
    (disk / "ballast").write_bytes(b"\0" * (5 * MB))  # what else fills the disk
    tasks = [Sized(n=n, size=100_000) for n in range(3)]
    tasks += [Sized(n=3, size=int(3.5 * MB))]  # does not fit
    tasks += [Sized(n=n, size=100_000) for n in range(4, 7)]
    results = lab.run_tasks(tasks, disable_progress=True)
    seen["returned"] = sorted(task.n for task in results)
    seen["failed"] = {
        str(task.n): f"{e.exc_type}: {e.message}" for task, e in results.failures.items()
    }
    seen["cached"] = sorted(task.n for task in tasks if lab.is_cached(task))
    seen["temporaries"] = temporaries(storage)

    fill(disk / "filler", 256 * 1024)  # room for a small result, not for its 3 MB log
    chatty = PrintsMuch(chars=3_000_000)
    seen["chatty"] = lab.run_task(chatty, disable_progress=True)
    seen["chatty_cached"] = lab.is_cached(chatty)
    seen["chatty_log"] = lab.logs(chatty)[:200]

    (disk / "filler").unlink()
    (disk / "ballast").unlink()
    again = labnb.Lab(storage=storage, max_workers=1, context={"tally": tally})
    results = again.run_tasks(tasks, disable_progress=True)
    seen["rerun"] = sorted(task.n for task in results)
    seen["rerun_cached"] = sorted(task.n for task in tasks if again.is_cached(task))
    seen["temporaries_after"] = temporaries(storage)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
