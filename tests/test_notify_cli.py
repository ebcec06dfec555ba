"""`streamqc notify-test`: one test event through every configured notifier, a clear verdict."""

from __future__ import annotations

import json

from receivers import Receiver
from typer.testing import CliRunner

from streamqc.cli import app


def _notify_test(config_path):
    result = CliRunner().invoke(app, ["notify-test", "--config", str(config_path)])
    result.returncode = result.exit_code
    return result


def test_notify_test_reaches_every_notifier_and_reports_a_failing_one(tmp_path):
    good = Receiver().start()
    bad = Receiver(lambda request: (404, b"no_service")).start()
    config = tmp_path / "streams.yaml"
    config.write_text(f"""
notify:
  - {{name: hook, type: webhook, url: "{good.url}/hook", secret: s3cret}}
  - {{name: log, type: stdout}}
  - {{name: chat, type: slack, url: "{bad.url}/services/x"}}
""")
    try:
        done = _notify_test(config)
    finally:
        good.stop()
        bad.stop()
    assert done.returncode == 1, done.stderr
    assert "hook: delivered" in done.stderr and "log: delivered" in done.stderr
    assert "chat: FAILED: HTTP 404" in done.stderr
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["kind"] == "notify.test" and line["severity"] == "info"
    assert len(good.requests) == 1 and json.loads(good.requests[0]["body"])["kind"] == "notify.test"
    assert good.requests[0]["headers"]["X-Streamqc-Signature"].startswith("t=")


def test_notify_test_names_a_bad_key_and_exits_2(tmp_path):
    config = tmp_path / "streams.yaml"
    config.write_text("notify:\n  - {name: hook, type: webhook, url: 'not a url'}\n")
    done = _notify_test(config)
    assert done.returncode == 2
    assert "notify[0].url" in done.stderr and "Traceback" not in done.stderr
