"""Observability: one access line per request, one line per load, and Prometheus metrics."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from feedsvc.metrics import METRICS_MARKER, METRICS_SUBFOLDER, quoted
from tests.conftest import RECORDS, make_app
from tests.servers import fetch, running_feedsvc, serve_refused


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    """Each access line parsed as logfmt (values here hold no spaces unless quoted)."""
    return [
        dict(part.split("=", 1) for part in record.getMessage().split(" "))
        for record in caplog.records
        if record.name == "feedsvc.access"
    ]


def samples(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_one_access_line_per_request_for_misses_hits_and_flask_routes(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="feedsvc")
    first = client.get("/feeds/all.atom?page=1")
    second = client.get("/feeds/all.atom?page=1")
    head = client.head("/feeds/topics/ai.rss")
    missing = client.get("/feeds/topics/nothing.atom")
    lines = access_lines(caplog)
    assert len(lines) == 4
    assert lines[0] == {
        "method": "GET",
        "path": "/feeds/all.atom?page=1",
        "status": "200",
        "bytes": str(len(first.data)),
        "duration_ms": lines[0]["duration_ms"],
        "cache": "miss",
    }
    assert lines[1]["cache"] == "hit" and lines[1]["bytes"] == str(len(second.data))
    assert float(lines[1]["duration_ms"]) < float(lines[0]["duration_ms"])
    assert (lines[2]["method"], lines[2]["bytes"], head.status_code) == ("HEAD", "0", 200)
    assert (lines[3]["status"], lines[3]["cache"]) == ("404", "miss")
    assert lines[3]["bytes"] == str(len(missing.data))


def test_a_hostile_path_cannot_forge_a_log_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="feedsvc.access")
    client.get("/x%20y%22%0Amethod=GET%20path=/forged")
    (record,) = [r for r in caplog.records if r.name == "feedsvc.access"]
    assert "\n" not in record.getMessage()
    assert 'path="/x y\\"\\nmethod=GET path=/forged"' in record.getMessage()
    assert quoted("/feeds/all.atom") == "/feeds/all.atom"
    assert quoted("") == '""'


def test_no_access_lines_below_the_log_level(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="feedsvc")
    client.get("/feeds/all.atom")
    client.get("/feeds/all.atom")
    assert access_lines(caplog) == []


def test_a_load_logs_records_rejections_and_duration(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feedsvc.load")
    make_app()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "feedsvc.load"]
    fields = dict(part.split("=", 1) for part in line.split(" "))
    assert (fields["event"], fields["records"], fields["rejected"]) == ("load", "9", "9")
    assert float(fields["duration_ms"]) > 0


def test_metrics_count_requests_cache_hits_misses_renders_and_records(
    client: FlaskClient,
) -> None:
    for _ in range(3):
        client.get("/feeds/all.atom")
    client.get("/feeds/topics/ai.rss")
    client.get("/feeds/topics/ai.rss", headers={"If-None-Match": '"nothing"'})
    client.get("/feeds/topics/nothing.atom")
    found = samples(client)
    requests = "feedsvc_http_requests_total"
    assert found[(requests, (("route", "feeds.all_items_feed"), ("status", "200")))] == 3
    assert found[(requests, (("route", "feeds.group_feed"), ("status", "200")))] == 2
    assert found[(requests, (("route", "feeds.group_feed"), ("status", "404")))] == 1
    lookups = "feedsvc_render_cache_lookups_total"
    assert found[(lookups, (("result", "hit"),))] == 3
    assert found[(lookups, (("result", "miss"),))] == 3  # all, ai and the unknown topic
    assert found[("feedsvc_render_seconds_count", ())] == 2
    assert found[("feedsvc_records_loaded", ())] == 9
    assert found[("feedsvc_files_rejected", ())] == 9
    assert found[("feedsvc_loads_total", (("kind", "load"),))] == 1
    # the scrape itself is counted by the next one
    again = samples(client)
    assert again[(requests, (("route", "feeds.metrics"), ("status", "200")))] == 1


def test_each_app_has_its_own_metrics() -> None:
    one, two = make_app().test_client(), make_app().test_client()
    one.get("/feeds/all.atom")
    key = ("feedsvc_http_requests_total", (("route", "feeds.all_items_feed"), ("status", "200")))
    assert samples(one)[key] == 1
    assert key not in samples(two)


def test_pages_and_the_opml_list_report_render_cache_hits_and_misses(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="feedsvc.access")
    for url in ("/", "/", "/topics/ai", "/topics/ai", "/feeds.opml", "/feeds.opml"):
        assert client.get(url).status_code == 200
    assert [line["cache"] for line in access_lines(caplog)] == ["miss", "hit"] * 3
    found = samples(client)
    assert found[("feedsvc_render_seconds_count", ())] == 3
    assert found[("feedsvc_render_cache_lookups_total", (("result", "hit"),))] == 3


# -- METRICS_DIR given as a path (issue 16, item 15) --------------------------------------------

NOT_FOUND_SAMPLE = 'feedsvc_http_requests_total{route="feeds.all_items_feed",status="404"}'


def not_found_count(base: str) -> float:
    """The summed count of 404s from the all-items feed that /metrics reports (0 if none)."""
    body = fetch(base + "/metrics")[2].decode()
    line = next((line for line in body.splitlines() if line.startswith(NOT_FOUND_SAMPLE)), None)
    return float(line.split()[-1]) if line else 0.0


@pytest.mark.live
def test_metrics_dir_is_a_subfolder_feedsvc_owns_and_nothing_else_is_touched(
    tmp_path: Path,
) -> None:
    metrics = tmp_path / "shared"
    metrics.mkdir()
    theirs = {"counter_1.db": b"someone else's", "notes.txt": b"keep me", "sub/x.db": b"mine"}
    for name, data in theirs.items():
        (metrics / name).parent.mkdir(exist_ok=True)
        (metrics / name).write_bytes(data)
    settings = {"METRICS_DIR": str(metrics), "RELOAD_INTERVAL": "0"}
    for run in range(2):  # the second run starts from zero: the first run's samples are gone
        with running_feedsvc(RECORDS, tmp_path / "log", settings=settings, workers=2) as base:
            for _ in range(3):
                fetch(base + "/feeds/all.atom?page=99")
            assert not_found_count(base) == 3, run
            ours = metrics / METRICS_SUBFOLDER
            assert (ours / METRICS_MARKER).is_file() and list(ours.glob("*.db"))
    for name, data in theirs.items():
        assert (metrics / name).read_bytes() == data, name


def serve_refused_on(metrics: Path) -> str:
    """`feedsvc serve` with METRICS_DIR=metrics, which must stop at start-up with exit 1; its
    standard error."""
    settings = {"METRICS_DIR": str(metrics), "PARSE_CACHE": "off"}
    status, stderr = serve_refused("--seeds", str(RECORDS), "--workers", "1", settings=settings)
    assert status == 1 and "Traceback" not in stderr, stderr
    return stderr


@pytest.mark.live
def test_a_second_server_on_the_same_metrics_dir_is_refused(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    settings = {"METRICS_DIR": str(metrics), "RELOAD_INTERVAL": "0"}
    with running_feedsvc(RECORDS, tmp_path / "log", settings=settings) as base:
        fetch(base + "/feeds/all.atom?page=99")
        stderr = serve_refused_on(metrics)
        assert "is in use by another feedsvc serve" in stderr
        assert not_found_count(base) == 1  # the first server's samples are still there


def test_a_metrics_subfolder_feedsvc_did_not_make_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "metrics" / METRICS_SUBFOLDER
    foreign.mkdir(parents=True)
    (foreign / "counter_7.db").write_bytes(b"not ours")
    stderr = serve_refused_on(tmp_path / "metrics")
    assert "holds files feedsvc did not write" in stderr
    assert (foreign / "counter_7.db").read_bytes() == b"not ours"
