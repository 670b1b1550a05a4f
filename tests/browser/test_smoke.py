"""The browser harness works end to end: server, kernel, widget, click -> kernel."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.browser

WIDGET = '''\
import anywidget, traitlets

class W(anywidget.AnyWidget):
    _esm = """
    export default {
      render({ model, el }) {
        const b = document.createElement('button');
        b.textContent = 'Click me';
        b.onclick = () => {
          model.set('clicks', model.get('clicks') + 1);
          model.save_changes();
        };
        el.append(b);
      }
    }
    """
    clicks = traitlets.Int(0).tag(sync=True)

w = W()
w
'''


def test_click_reaches_kernel(notebook):
    nb = notebook(["import sys; print(sys.prefix)", WIDGET])
    nb.run_all()

    # The kernel is this venv's Python.
    nb.wait_for_output_text(0, sys.prefix)
    assert nb.cell_output_text(0).strip() == sys.prefix

    button = nb.page.get_by_role("button", name="Click me")
    button.wait_for(state="visible")
    button.click()

    index = nb.append_and_run("print(w.clicks)")
    assert index == 2
    nb.wait_for_output_text(index, "1")
    assert nb.cell_output_text(index).strip() == "1"
    nb.screenshot("after-click")


def test_harness_editing_rerun_and_reload(notebook):
    nb = notebook(["n = 1\nprint('n =', n)"])
    nb.run_all()
    nb.wait_for_output_text(0, "n = 1")

    # Multi-line code with indentation and brackets goes in verbatim.
    source = (
        "def f(x):\n    if x:\n        return [x, (x, {'k': x})]\n    return None\n\nprint(f(2))"
    )
    index = nb.append_and_run(source)
    assert nb.cell_source(index) == source
    nb.wait_for_output_text(index, "[2, (2, {'k': 2})]")

    # Re-running an earlier cell; reloading keeps the kernel and its state.
    nb.set_cell_source(0, "n += 1\nprint('n =', n)")
    nb.run_cell(0)
    nb.wait_for_output_text(0, "n = 2")
    count = nb.cell_count()
    nb.reload()
    assert nb.cell_count() == count  # saved before the reload
    nb.wait_for_output_text(index, "[2, (2, {'k': 2})]")
    nb.append_and_run("print('after reload', n)")
    nb.wait_for_output_text(nb.cell_count() - 1, "after reload 2")
