"""Several Sidekiq apps in one supervisor: each app's URLs under /apps/NAME, its own ledger, its
own tokens; the unprefixed URLs are the default app's."""

from __future__ import annotations

import json
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.ownership import LedgerOfAnotherApp, owner
from sidekiq_supervisor.web.app import create_app
from tests.conftest import postgres_database, redis_test_url
from tests.receivers import HttpReceiver


def seed_report(jid: str, arguments: str = "[1]") -> dict[str, str]:
    return {"job_id": jid, "arguments": arguments, "job_class": "HardWorker", "queue": "default"}


def write_config(path: Path, *apps: str, extra: dict[str, str] | None = None) -> Path:
    tables = []
    for name in apps:
        lines = [
            f"[apps.{name}]",
            f'redis_url = "{redis_test_url()}"',
            *(extra or {}).get(name, "").splitlines(),
        ]
        tables.append("\n".join(lines))
    path.write_text("\n\n".join(tables) + "\n")
    return path


def config_with_billing_token(tmp_path: Path) -> Path:
    """Shop and billing, billing with an API token of its own (``billing-t0ken``)."""
    return write_config(
        tmp_path / "apps.toml", "shop", "billing", extra={"billing": 'api_tokens = ["billing-t0ken"]'}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic_password(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + b64encode(f"sidekiq:{token}".encode()).decode()}


def two_app_settings(base_url: str, config: Path, **more: str) -> Settings:
    return Settings(database_url=base_url, redis_url=redis_test_url(), config=str(config), **more)


@pytest.fixture
def base_url(unmigrated_database_url: str) -> str:
    """An empty database: a SQLite file, or a new PostgreSQL database (apps add schemas to it)."""
    return unmigrated_database_url


@pytest.fixture
def two_apps(base_url: str, tmp_path: Path) -> Iterator[TestClient]:
    config = write_config(tmp_path / "apps.toml", "shop", "billing")
    with TestClient(create_app(two_app_settings(base_url, config))) as client:
        yield client


def jids(client: TestClient, prefix: str = "") -> set[str]:
    response = client.get(f"{prefix}/api/v1/jobs", params={"status": "all"})
    assert response.status_code == 200, response.text
    return {job["jid"] for job in response.json()["data"]}


def test_each_app_keeps_its_own_jobs_and_the_unprefixed_urls_are_the_default_apps(two_apps):
    assert two_apps.post("/apps/billing/api/v1/jobs", data=seed_report("b1")).status_code == 201
    assert two_apps.post("/api/v1/jobs", data=seed_report("s1")).status_code == 201
    assert two_apps.post("/apps/shop/api/v1/jobs", data=seed_report("s2")).status_code == 201
    # The same jid from two apps is two jobs.
    assert two_apps.post("/apps/billing/api/v1/jobs", data=seed_report("s1", "[2]")).status_code == 201
    assert two_apps.post("/apps/billing/api/v1/jobs/b1/started", data=seed_report("b1")).status_code == 200

    assert jids(two_apps, "/apps/billing") == {"b1", "s1"}
    assert jids(two_apps, "/apps/shop") == {"s1", "s2"}
    assert jids(two_apps) == {"s1", "s2"}
    assert two_apps.get("/apps/billing/api/v1/jobs/s1").json()["arguments"] == [2]
    assert two_apps.get("/api/v1/jobs/s1").json()["arguments"] == [1]
    uncompleted = two_apps.get("/apps/billing/api/v1/jobs", params={"status": "uncompleted"}).json()
    assert [job["jid"] for job in uncompleted["data"]] == ["b1"]
    assert two_apps.get("/api/v1/jobs/b1").status_code == 404


def test_each_apps_pages_show_its_own_ledger_and_link_within_its_prefix(two_apps):
    two_apps.post("/apps/billing/api/v1/jobs", data=seed_report("only-billing"))
    billing = two_apps.get("/apps/billing/jobs", params={"status": "all"})
    shop = two_apps.get("/jobs", params={"status": "all"})
    assert billing.status_code == shop.status_code == 200
    assert "only-billing" in billing.text
    assert "only-billing" not in shop.text


def test_an_unknown_app_is_a_404_naming_it_and_an_apps_bare_name_redirects_to_its_overview(two_apps):
    for path in ("/apps/nope/api/v1/jobs", "/apps/nope/jobs", "/apps/nope"):
        response = two_apps.get(path)
        assert response.status_code == 404
        assert response.json() == {"error": "no app named 'nope'", "app": "nope"}
    response = two_apps.post("/apps/nope/api/v1/jobs", data=seed_report("x"))
    assert response.status_code == 404
    assert jids(two_apps) == set() and jids(two_apps, "/apps/billing") == set()

    response = two_apps.get("/apps/billing", params={"a": "1"}, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/apps/billing/?a=1"


def test_each_ledger_knows_its_app_and_a_reordered_file_is_refused(base_url, tmp_path):
    config = write_config(tmp_path / "apps.toml", "shop", "billing")
    with TestClient(create_app(two_app_settings(base_url, config))) as client:
        client.post("/apps/billing/api/v1/jobs", data=seed_report("b1"))
    engine = make_engine(base_url)
    try:
        assert owner(engine) == "shop"
    finally:
        engine.dispose()

    # Billing first would make DATABASE_URL's ledger (shop's jobs) billing's: refused, by name.
    write_config(config, "billing", "shop")
    refused = pytest.raises(LedgerOfAnotherApp, match="belongs to the app 'shop', not 'billing'")
    with refused, TestClient(create_app(two_app_settings(base_url, config))):
        pass


def test_an_apps_tokens_open_its_own_api_only_and_the_global_token_opens_every_app(base_url, tmp_path):
    config = config_with_billing_token(tmp_path)
    settings = two_app_settings(base_url, config, api_token="global-t0ken")
    billing_token, global_token = bearer("billing-t0ken"), bearer("global-t0ken")
    with TestClient(create_app(settings)) as client:
        # The fast path (a form report) and the routes (JSON, reads) alike.
        assert (
            client.post(
                "/apps/billing/api/v1/jobs", data=seed_report("b1"), headers=billing_token
            ).status_code
            == 201
        )
        assert client.get("/apps/billing/api/v1/jobs", headers=billing_token).status_code == 200
        for path in ("/api/v1/jobs", "/apps/shop/api/v1/jobs"):
            assert client.post(path, data=seed_report("x"), headers=billing_token).status_code == 401
            assert client.get(path, headers=billing_token).status_code == 401
            assert client.get(path, headers=global_token).status_code == 200
        assert client.get("/apps/billing/api/v1/jobs", headers=global_token).status_code == 200
        assert client.get("/apps/billing/api/v1/jobs").status_code == 401
        assert (
            client.get("/apps/billing/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        )


BOTH_SCHEMAS_JOBS = """
    SELECT 'public', jid FROM public.jobs UNION ALL SELECT 'app_billing', jid FROM app_billing.jobs
"""


@pytest.mark.postgres
def test_on_postgresql_apps_sharing_a_database_keep_their_ledgers_in_schemas_of_their_own(tmp_path):
    with postgres_database(migrate=False) as url:
        config = write_config(tmp_path / "apps.toml", "shop", "billing")
        with TestClient(create_app(two_app_settings(url, config))) as client:
            client.post("/apps/billing/api/v1/jobs", data=seed_report("b1"))
            client.post("/api/v1/jobs", data=seed_report("s1"))
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(text(BOTH_SCHEMAS_JOBS)).all()
                partitions = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app_billing'"
                    )
                ).scalar_one()
        finally:
            engine.dispose()
        assert sorted(rows) == [("app_billing", "b1"), ("public", "s1")]
        assert partitions > 0  # the billing history's daily partitions live in its schema


def test_metrics_label_every_series_with_its_app_and_a_prefix_scrapes_that_app_alone(base_url, tmp_path):
    config = config_with_billing_token(tmp_path)
    settings = two_app_settings(base_url, config, api_token="global-t0ken")
    billing_token, global_token = bearer("billing-t0ken"), bearer("global-t0ken")
    with TestClient(create_app(settings)) as client:
        for jid in ("b1", "b2"):
            client.post("/apps/billing/api/v1/jobs", data=seed_report(jid), headers=global_token)
        client.post("/api/v1/jobs", data=seed_report("s1"), headers=global_token)

        every = client.get("/metrics", headers=global_token)
        assert every.status_code == 200
        # The text format wants one block per metric: the apps' samples share it.
        assert every.text.count("# TYPE supervisor_reports_received_total counter") == 1
        assert 'supervisor_reports_received_total{app="billing",kind="queued"} 2.0' in every.text
        assert 'supervisor_reports_received_total{app="shop",kind="queued"} 1.0' in every.text
        assert 'supervisor_database_up{app="billing"} 1.0' in every.text
        assert 'supervisor_database_up{app="shop"} 1.0' in every.text

        # Billing's token opens billing's figures, not every app's.
        assert client.get("/metrics", headers=billing_token).status_code == 401
        billing = client.get("/apps/billing/metrics", headers=billing_token)
        assert billing.status_code == 200
        assert 'supervisor_reports_received_total{app="billing",kind="queued"} 2.0' in billing.text
        assert 'app="shop"' not in billing.text


def test_with_several_apps_each_page_names_its_app_and_links_the_overview_of_all(two_apps):
    billing = two_apps.get("/apps/billing/jobs")
    shop = two_apps.get("/")
    assert '<a class="app-badge" href="/apps"' in billing.text
    assert ">billing</a>" in billing.text
    assert ">shop</a>" in shop.text
    assert 'href="/apps/billing/durations"' in billing.text  # its links stay within its prefix


def test_with_several_apps_each_apps_alert_messages_name_it(base_url, tmp_path):
    receiver = HttpReceiver().start()
    try:
        config = write_config(tmp_path / "apps.toml", "shop", "billing")
        settings = two_app_settings(base_url, config).model_copy(
            update={
                "notify": f"json://{receiver.url}/hook",
                "notify_name": "supervisor",
                "alert_interval_seconds": 0.2,
                "alert_uncompleted_minutes": 0,
            }
        )
        with TestClient(create_app(settings)) as client:
            assert client.post("/apps/billing/api/v1/alerts/test").status_code == 202
            receiver.wait_for(lambda r: len(r.received) == 1)
            assert client.post("/api/v1/alerts/test").status_code == 202
            receiver.wait_for(lambda r: len(r.received) == 2)
    finally:
        receiver.stop()
    titles = sorted(json.loads(request.body)["title"] for request in receiver.received)
    assert titles == ["[supervisor billing] Test notification", "[supervisor shop] Test notification"]


# (method, path under an app's prefix, request keywords): the JSON batch of the gem, the seed's
# form reports (the fast path), the restart action and reads.
GUARDED_ROUTES = [
    ("post", "/api/v1/events", {"json": {"events": [{"event": "queued", **seed_report("e1")}]}}),
    ("post", "/api/v1/jobs", {"data": seed_report("q1")}),
    ("post", "/api/v1/jobs/s1/started", {"data": seed_report("s1")}),
    ("post", "/api/v1/jobs/c1/complete", {"data": seed_report("c1")}),
    ("post", "/api/v1/jobs/restart", {"params": {"dry_run": "true"}}),
    ("get", "/api/v1/jobs/e1/history", {}),
    ("get", "/api/v1/stats", {}),
    ("get", "/api/v1/durations", {}),
]


def test_an_apps_token_opens_each_route_of_its_own_api_and_none_of_another_apps(base_url, tmp_path):
    config = write_config(
        tmp_path / "apps.toml",
        "shop",
        "billing",
        extra={"shop": 'api_tokens = ["shop-t0ken"]', "billing": 'api_tokens = ["billing-t0ken"]'},
    )
    settings = two_app_settings(base_url, config, api_token="global-t0ken")
    with TestClient(create_app(settings)) as client:
        for method, path, keywords in GUARDED_ROUTES:

            def call(url: str, headers: dict[str, str], method: str = method, keywords: dict = keywords):
                return getattr(client, method)(url, headers=headers, **keywords)

            # Another app's token, or none: 401, on the prefixed and the unprefixed URLs alike.
            for url, headers in (
                (f"/apps/billing{path}", bearer("shop-t0ken")),
                (f"/apps/billing{path}", basic_password("shop-t0ken")),
                (f"/apps/billing{path}", {}),
                (f"/apps/shop{path}", bearer("billing-t0ken")),
                (path, bearer("billing-t0ken")),
                (path, basic_password("billing-t0ken")),
            ):
                response = call(url, headers)
                assert response.status_code == 401, (method, url, headers, response.text)
                assert response.json()["error"] == "a valid API token is required", (method, url)
            # Its own token (Bearer or the password of basic auth), or the global one: let in.
            for url, headers in (
                (f"/apps/billing{path}", bearer("billing-t0ken")),
                (f"/apps/billing{path}", basic_password("billing-t0ken")),
                (f"/apps/billing{path}", bearer("global-t0ken")),
                (f"/apps/shop{path}", bearer("shop-t0ken")),
                (path, bearer("shop-t0ken")),
                (f"/apps/shop{path}", bearer("global-t0ken")),
            ):
                response = call(url, headers)
                assert response.status_code in (200, 201), (method, url, headers, response.text)

        # What the refused reports carried was stored nowhere else: each ledger holds the reports
        # sent with a token it accepts, under its own prefix (or the unprefixed URLs for shop).
        for prefix, token in (("/apps/billing", "billing-t0ken"), ("/apps/shop", "shop-t0ken")):
            stored = client.get(f"{prefix}/api/v1/jobs", params={"status": "all"}, headers=bearer(token))
            assert {job["jid"] for job in stored.json()["data"]} == {"e1", "q1", "s1", "c1"}


def test_without_the_global_token_an_app_without_tokens_stays_open_and_the_other_wants_its_own(
    base_url, tmp_path
):
    config = config_with_billing_token(tmp_path)
    with TestClient(create_app(two_app_settings(base_url, config))) as client:
        for path in ("/api/v1/jobs", "/apps/shop/api/v1/jobs"):
            assert client.get(path).status_code == 200
        assert client.get("/apps/billing/api/v1/jobs").status_code == 401
        assert client.post("/apps/billing/api/v1/jobs", data=seed_report("b1")).status_code == 401
        assert client.post("/apps/billing/api/v1/jobs/restart").status_code == 401
        events = {"events": [{"event": "queued", **seed_report("b2")}]}
        assert client.post("/apps/billing/api/v1/events", json=events).status_code == 401
        assert client.get("/apps/billing/api/v1/jobs", headers=bearer("billing-t0ken")).json()["data"] == []
        stored = client.post("/apps/billing/api/v1/events", json=events, headers=bearer("billing-t0ken"))
        assert stored.json()["stored"] == 1
        assert jids(client) == set()


def test_the_overview_of_every_app_names_no_one_app_in_its_header(two_apps):
    overview = two_apps.get("/apps")
    assert overview.status_code == 200
    assert 'class="app-badge"' not in overview.text
