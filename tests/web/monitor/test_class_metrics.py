"""``/sidekiq/metrics/<Class>``: one class minute by minute and the spread of its run times, read from
the counters and histograms that real Sidekiq 7 and 8 processes wrote (the dumps)."""

from __future__ import annotations

import re

from tests.web.monitor.conftest import data_values


def classes(html: str) -> list[str]:
    return re.findall(r'<tr data-class="([^"]+)"', html)


def test_each_class_of_the_metrics_page_has_a_page_whose_totals_match_its_row(loaded):
    listing = loaded.client.get("/sidekiq/metrics?period=8h").text
    names = classes(listing)
    assert names, "the dumps hold metrics"
    for name in names:
        row = re.search(rf'<tr data-class="{re.escape(name)}">(.*?)</tr>', listing, re.S).group(1)
        assert f'href="/sidekiq/metrics/{name}?period=8h"' in row
        page = loaded.client.get(f"/sidekiq/metrics/{name}?period=8h")
        assert page.status_code == 200
        shown = data_values(page.text, "data-metric")
        assert shown == data_values(row, "data-metric")
        # Every successful run is in the histogram, in exactly one bucket.
        runs = sum(int(v.replace(",", "")) for v in data_values(page.text, "data-bucket").values())
        assert runs == int(shown["successes"].replace(",", ""))


def test_the_histogram_puts_each_run_under_sidekiqs_bucket_bounds(loaded):
    page = loaded.client.get("/sidekiq/metrics/FastJob?period=8h").text
    average = float(data_values(page, "data-metric")["average"].removesuffix(" ms"))
    buckets = data_values(page, "data-bucket")
    assert buckets, "FastJob ran in the dumps"
    # FastJob sleeps ~20 ms: its runs fall in the 20-30 ms bucket, labelled by its upper bound.
    assert 20 <= average < 30 and set(buckets) == {"30ms"}


def test_a_class_with_no_metrics_and_a_longer_period_still_answer(loaded):
    page = loaded.client.get("/sidekiq/metrics/NoSuchJob")
    assert page.status_code == 200 and 'id="no-metrics"' in page.text
    # Per-minute data lives 8 hours: Sidekiq shows 8 hours for a longer period, and so does this.
    assert 'aria-current="true">8h<' in loaded.client.get("/sidekiq/metrics/FastJob?period=72h").text
    assert loaded.client.get("/sidekiq/metrics/FastJob?period=3h").status_code == 422


def test_sidekiq_6_says_it_records_no_metrics(loaded6):
    page = loaded6.client.get("/sidekiq/metrics/FastJob").text
    assert "Sidekiq 6 records no execution metrics" in page
