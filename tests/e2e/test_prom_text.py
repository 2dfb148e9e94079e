# SPDX-License-Identifier: Apache-2.0
"""The Prometheus text-format checker the metrics tests rely on (tests/e2e/prom_text.py)
must refuse what the format forbids: each case below breaks one rule of the exposition
format and has to raise, and a well-formed exposition (the format documentation's own
example shape) has to parse to the values written."""
import math

import pytest

from prom_text import parse_prometheus

GOOD = """# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"} 3 1395066363000
# A comment
msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
"""


def test_a_good_exposition_parses():
    f = parse_prometheus(GOOD)
    assert f["http_requests_total"]["type"] == "counter"
    assert f["http_requests_total"]["samples"][1] == (
        "http_requests_total", {"method": "post", "code": "400"}, 3.0)
    labels = f["msdos_file_access_time_seconds"]["samples"][0][1]
    assert labels["path"] == "C:\\DIR\\FILE.TXT"
    assert labels["error"] == 'Cannot find file:\n"FILE.TXT"'
    assert math.isinf(f["something_weird"]["samples"][0][2])
    assert f["http_request_duration_seconds"]["type"] == "histogram"


BAD = {
    "no final line feed": GOOD.rstrip("\n"),
    "buckets not cumulative": GOOD.replace('{le="0.1"} 33444', '{le="0.1"} 20000'),
    "no +Inf bucket": GOOD.replace('http_request_duration_seconds_bucket{le="+Inf"} 144320\n',
                                   ""),
    "+Inf bucket differs from _count": GOOD.replace("_count 144320", "_count 144321"),
    "TYPE twice": GOOD + "# TYPE http_requests_total counter\n",
    "TYPE after samples": GOOD.replace("metric_without_timestamp_and_labels 12.47\n",
                                       "metric_without_timestamp_and_labels 12.47\n"
                                       "# TYPE metric_without_timestamp_and_labels gauge\n"),
    "unknown type": GOOD.replace("histogram\n", "histo\n"),
    "family not contiguous": GOOD + 'http_requests_total{method="get",code="200"} 1\n',
    "same sample twice": GOOD + "metric_without_timestamp_and_labels 1\n",
    "bad escape": GOOD.replace('division by zero', 'division \\t zero'),
    "unterminated label": GOOD.replace('{problem="division by zero"}', '{problem="division}'),
    "bad metric name": GOOD.replace("metric_without", "1metric_without"),
    "not a float": GOOD.replace("12.47", "12,47"),
    "negative counter": GOOD.replace("} 3 1395066363000", "} -3 1395066363000"),
    "reserved label": GOOD.replace('method="post",code="400"', '__name__="x"'),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_broken_rule_is_refused(case):
    with pytest.raises(ValueError):
        parse_prometheus(BAD[case])
