import time, pytest
from . import lab
from .test_live_views import STOP_CELL, _shutdown_kernels

DIAG = r'''
import sys, traceback, threading
from suitkaise_nb.notebook import _extension as E
b = E._state['bridge']
print("thread", b._thread, b._thread.is_alive() if b._thread else None)
for v in b.views.values(): print("view", type(v).__name__, v.dirty, v.finished, v.final_published)
print("model run", forever.model.run, forever.model.state)
for tid, fr in sys._current_frames().items():
    name = [t.name for t in threading.enumerate() if t.ident == tid]
    if name and ('display' in name[0] or 'hub' in name[0].lower()):
        print("=== ", name); print("".join(traceback.format_stack(fr)))
'''

@pytest.mark.parametrize("i", range(4))
def test_debug(lab_server, page, artifacts, i):
    lab.write_notebook(lab_server.root / f"d{i}.ipynb", [STOP_CELL])
    lab.open_notebook(page, lab_server.lab_url(f"d{i}.ipynb"))
    lab.run_all(page)
    seq = []
    for _ in range(25):
        s = lab.read(page)
        seq.append((s["cells"][0]["prompt"], [v["progress"] for v in s["cells"][0]["procs"]]))
        time.sleep(0.2)
    print(i, seq)
    out = page.evaluate("""async (code) => {
      const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
      const f = k.requestExecute({code, silent: false, store_history: false});
      let out = '';
      f.onIOPub = (m) => { if (m.header.msg_type === 'stream') out += m.content.text; if (m.header.msg_type === 'error') out += m.content.traceback.join('\\n'); };
      await f.done; return out; }""", DIAG)
    print(out)
    _shutdown_kernels(lab_server)
