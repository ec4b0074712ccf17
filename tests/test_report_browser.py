"""The report opens in a real browser: headless Chromium loads a small `lamo demo` report (and an mp4 as
``lamo sample`` writes it) and every image renders and every video can play.

Needs a Chromium binary (Debian: ``apt-get install -y chromium``). Without one the test is skipped — except
when the ``CI`` environment variable is set, where a missing browser is a failure, so CI really runs it."""
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading

import numpy as np
import pytest

from lamo.demo.run import DemoConfig, run_demo
from lamo.video_io import write_video

from bench_scripts import TINY_WORLD as WORLD
from test_demo_run import tiny_backbone  # noqa: F401  (the fixture: a backbone trained here for a few steps)

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

#: Loads the page under test in a frame (same origin), waits until its media settle, writes what it saw.
CHECK_PAGE = """<!doctype html><html><body><iframe id="f" src="%s" width="1200" height="800"></iframe>
<pre id="result">pending</pre><script>
const started = Date.now();
function settled(doc) {
  const imgs = [...doc.images], vids = [...doc.querySelectorAll('video')];
  return imgs.every(i => i.complete) && vids.every(v => v.readyState >= 2 || v.error);
}
function check() {
  const doc = document.getElementById('f').contentDocument;
  if (!doc || !doc.URL.endsWith('%s') || doc.readyState !== 'complete' || (!settled(doc) && Date.now() - started < 8000)) {
    return setTimeout(check, 100);
  }
  document.getElementById('result').textContent = JSON.stringify({
    images: [...doc.images].map(i => ({src: i.getAttribute('src'), width: i.naturalWidth})),
    videos: [...doc.querySelectorAll('video')].map(v => ({src: v.getAttribute('src'), ready: v.readyState,
                                                         error: v.error ? v.error.code : null}))});
}
check();
</script></body></html>"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _browser() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail("no Chromium found; CI must run the browser test (apt-get install -y chromium)")
    pytest.skip("no Chromium binary found (apt-get install -y chromium); CI runs this test")


def _open(folder, page: str) -> dict:
    """Serve ``folder`` on 127.0.0.1, open ``page`` in headless Chromium through :data:`CHECK_PAGE`, return
    the images and videos it saw."""
    browser = _browser()
    (folder / "_check.html").write_text(CHECK_PAGE % (page, page))
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/_check.html"
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--mute-audio",
                              "--virtual-time-budget=15000", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120).stdout
    finally:
        server.shutdown()
        server.server_close()
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert found and found.group(1) != "pending", f"the check page did not finish: {dom[:500]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_the_demo_report_renders_in_a_browser(tiny_backbone, tmp_path):  # noqa: F811
    _browser()
    base, _ = tiny_backbone
    cfg = DemoConfig(out=str(tmp_path / "report"), backbone=str(base), finetunes={}, world_overrides=WORLD, prior="",
                     selection="", prior_taus=(1,), prior_clips=16, prior_preset="tiny", prior_steps=3, prior_batch=4,
                     val_prompts=3, val_seeds=(100,), sweep=(0.1, 1.0), flowmo_sweep=(), test_prompts=3,
                     test_seeds=(0,), steps=3, chunk=4, gifs=2, n_resamples=99)
    assert run_demo(cfg=cfg) == 0
    seen = _open(tmp_path / "report", "index.html")
    srcs = {i["src"] for i in seen["images"]}
    assert {"media/forest.png", "media/sweep.png", "media/prompt_0.gif", "media/prompt_1.gif"} <= srcs
    assert all(i["width"] > 0 for i in seen["images"]), seen["images"]  # every image decoded
    assert all(v["ready"] >= 2 and v["error"] is None for v in seen["videos"]), seen["videos"]


def test_lamo_mp4s_play_in_a_browser(tmp_path):
    _browser()
    frames = np.random.default_rng(0).integers(0, 255, (8, 33, 31, 3), dtype=np.uint8)  # odd size: padded
    write_video(tmp_path / "clip.mp4", frames, reproducible=True)  # as `lamo sample` writes them
    (tmp_path / "page.html").write_text("<!doctype html><video src='clip.mp4' muted preload='auto'></video>"
                                        "<img src='missing.png'>")
    seen = _open(tmp_path, "page.html")
    assert seen["videos"] == [{"src": "clip.mp4", "ready": seen["videos"][0]["ready"], "error": None}]
    assert seen["videos"][0]["ready"] >= 2  # the first frame at least is decoded
    assert seen["images"] == [{"src": "missing.png", "width": 0}]  # and a broken image is seen as broken
