import time
from . import lab
from .test_live_views import STOP_CELL, _shutdown_kernels

def test_debug(lab_server, page, artifacts):
    lab.write_notebook(lab_server.root / "d.ipynb", [STOP_CELL])
    lab.open_notebook(page, lab_server.lab_url("d.ipynb"))
    page.evaluate("""() => { window.__msgs = [];
      const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
      k.anyMessage.connect((_, a) => { const m = a.msg; window.__msgs.push([performance.now()|0, a.direction, m.channel, m.header.msg_type, (m.parent_header||{}).msg_id, (m.content||{}).comm_id, JSON.stringify(m.content).slice(0,150)]); });
      return 1; }""")
    lab.run_all(page)
    for i in range(30):
        s = lab.read(page)
        print(s["cells"][0]["prompt"], [v["progress"] for v in s["cells"][0]["procs"]])
        time.sleep(0.2)
    for m in page.evaluate("() => window.__msgs"):
        print(m)
    _shutdown_kernels(lab_server)
