"""hub.alerts: an alert reaches a real webhook; a dead or wrong one is logged and never raises."""

from __future__ import annotations

import logging
import socket

from hub import alerts


def test_an_alert_is_logged_and_posted_to_the_webhook(alert_sink, caplog, monkeypatch):
    monkeypatch.setenv("PNEUMO_HOME", "/srv/pneumo")
    with caplog.at_level(logging.WARNING, logger="hub.alerts"):
        assert alerts.notify("batch_quarantined", "batch b-7 quarantined", batch="b-7", problems=["x: corrupt"])
    (body,) = alert_sink
    assert body["event"] == "batch_quarantined" and body["summary"] == "batch b-7 quarantined"
    assert body["details"] == {"batch": "b-7", "problems": ["x: corrupt"]} and body["hub"] == "/srv/pneumo"
    assert "ALERT batch_quarantined: batch b-7 quarantined" in caplog.text


def test_a_dead_or_wrong_webhook_is_logged_and_the_caller_goes_on(monkeypatch, caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PNEUMO_ALERT_WEBHOOK", f"http://127.0.0.1:{port}/hook")
    with caplog.at_level(logging.WARNING, logger="hub.alerts"):
        assert alerts.notify("task_failed", "train failed") is False
    assert "not delivered" in caplog.text and "ALERT task_failed" in caplog.text
    monkeypatch.setenv("PNEUMO_ALERT_WEBHOOK", "ftp://example/hook")
    assert alerts.notify("task_failed", "train failed") is False
    assert "not an http(s) URL" in caplog.text


def test_without_a_webhook_the_alert_is_only_logged(monkeypatch, caplog):
    monkeypatch.delenv("PNEUMO_ALERT_WEBHOOK", raising=False)
    with caplog.at_level(logging.WARNING, logger="hub.alerts"):
        assert alerts.notify("challenger_rejected", "recall fell") is False
    assert "ALERT challenger_rejected: recall fell" in caplog.text
