import time
from . import lab


def test_debug(lab_server, page, artifacts):
    lab.write_notebook(lab_server.root / "d.ipynb", ["print(1)"])
    t0 = time.monotonic()
    ev = []
    page.on("request", lambda r: ev.append((round(time.monotonic() - t0, 2), "req", r.url[:120])))
    page.on(
        "requestfailed",
        lambda r: ev.append((round(time.monotonic() - t0, 2), "FAILED", r.url[:120], r.failure)),
    )
    page.on(
        "requestfinished",
        lambda r: ev.append((round(time.monotonic() - t0, 2), "fin", r.url[:120])),
    )
    page.goto(lab_server.lab_url("d.ipynb"))
    print("goto", time.monotonic() - t0)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60000)
    print("cell", time.monotonic() - t0)
    lab.open_notebook(page, lab_server.lab_url("d.ipynb"))
    print("open2", time.monotonic() - t0)
    for e in ev:
        if e[1] != "fin" or True:
            print(e)
