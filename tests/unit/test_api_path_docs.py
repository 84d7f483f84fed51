"""docs/api-path.md is generated (ladder/api_path_docs.py): fresh, and its figures say what the
option does (request fees fall, egress moves to the load balancer)."""

from __future__ import annotations

import json
import re

from ladder import api_path_docs
from tests.unit.plans import plan


def _pairs() -> dict[int, tuple[dict, dict]]:
    def js(p) -> dict:
        return json.loads(json.dumps(p.to_json()))
    return {n: (js(plan(f"phase{n}")), js(plan(f"phase{n}", **{"cdn": api_path_docs.DIRECT})))
            for n in api_path_docs.PHASES_PRICED}


def test_checked_in_api_path_doc_is_fresh():
    assert api_path_docs.API_PATH_DOC.read_text() == api_path_docs.render(_pairs()), \
        "run `python -m ladder docs` and commit docs/api-path.md"


def test_doc_rows_show_request_fees_falling_and_egress_moving():
    text = api_path_docs.render(_pairs())
    for n in api_path_docs.PHASES_PRICED:
        section = text.split(f"### Phase {n}: what moves", 1)[1].split("\n#", 1)[0]
        rows = {m[0]: m[1:] for m in re.findall(r"\| `(\w+)` \| ([\d,.]+) \| ([\d,.]+) \| ([+-][\d,.]+|0) \|", section)}
        fee_before, fee_after = (float(v.replace(",", "")) for v in rows["cloudfront_https_requests_10k"][:2])
        assert fee_after < fee_before / 5
        assert rows["data_transfer_out_gb"][2].startswith("+")  # the API's bytes now leave through the ALB
