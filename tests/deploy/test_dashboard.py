"""The Grafana dashboard only queries metrics the running app (or its worker) exposes."""

import json
import re
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "llmapp.json"
# In the dashboard's queries a metric name is always followed by its label matchers or a range.
METRIC_IN_QUERY = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created")


def dashboard_metric_names() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs, "the dashboard has no queries"
    return {name for expr in exprs for name in METRIC_IN_QUERY.findall(expr)}


@pytest.mark.django_db(transaction=True)
def test_every_metric_the_dashboard_queries_is_exposed(live_asgi_url):
    text = httpx.get(f"{live_asgi_url}/metrics", timeout=10).text
    exposed = {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SUFFIXES
    }
    wanted = dashboard_metric_names()
    assert len(wanted) >= 10
    assert sorted(wanted - exposed) == []


def test_the_dashboard_is_provisioned():
    provider = (ROOT / "deploy/grafana/provisioning/dashboards/llmapp.yml").read_text()
    assert "/var/lib/grafana/dashboards" in provider
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards" in compose
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml" in compose
    assert json.loads(DASHBOARD.read_text())["uid"] == "llmapp-overview"
