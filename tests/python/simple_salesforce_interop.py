"""Drives the simulator with simple-salesforce, the way a third-party tool would.

Usage: python simple_salesforce_interop.py CREDENTIALS_JSON PLAN_JSON OUTPUT_JSON

CREDENTIALS_JSON is the line `serve` prints (base_url, username, password, client_id,
client_secret, certificate_path). PLAN_JSON names what to exercise (objects, the upsert batch).
The Rust test that runs this compares OUTPUT_JSON with the simulator's truth dump.
"""
import csv
import io
import json
import sys

import requests
from simple_salesforce import Salesforce


def main(creds_path, plan_path, out_path):
    creds = json.load(open(creds_path))
    plan = json.load(open(plan_path))
    http = requests.Session()
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's `verify`; the
    # simulator's CA must win, and loopback needs no proxy settings from the environment either.
    http.trust_env = False
    http.verify = creds["certificate_path"]

    # A session from the simulator's OAuth 2.0 token endpoint (username-password flow).
    token = http.post(
        creds["base_url"] + "/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "username": creds["username"],
            "password": creds["password"],
        },
    )
    token.raise_for_status()
    token = token.json()
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=http,
        version=plan.get("version", "59.0"),
    )
    out = {}

    described = sf.describe()
    out["global_objects"] = sorted(o["name"] for o in described["sobjects"])
    account = sf.Account.describe()
    out["account_fields"] = {f["name"]: f["type"] for f in account["fields"]}

    # REST query with small pages, followed through nextRecordsUrl by query_more.
    soql = plan["paged_query"]
    page = sf.query(soql, headers={"Sforce-Query-Options": "batchSize=200"})
    ids, pages = [r["Id"] for r in page["records"]], 1
    total = page["totalSize"]
    while not page["done"]:
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
        ids.extend(r["Id"] for r in page["records"])
        pages += 1
    out["paged"] = {"ids": ids, "pages": pages, "total_size": total}

    # queryAll: recycle-bin records included.
    deleted = sf.query_all(plan["deleted_query"], include_deleted=True)
    out["query_all_deleted_ids"] = sorted(r["Id"] for r in deleted["records"])

    # sObject Collections upsert on an external id.
    upsert = plan["upsert"]
    result = sf.restful(
        f"composite/sobjects/{upsert['object']}/{upsert['external_id_field']}",
        method="PATCH",
        json={"allOrNone": False, "records": upsert["records"]},
    )
    out["upsert_results"] = result

    # Bulk API 2.0 query job, all result pages by locator.
    rows = []
    for chunk in sf.bulk2.Account.query(plan["bulk_query"], max_records=plan.get("bulk_page", 500), wait=0.05):
        rows.extend(csv.DictReader(io.StringIO(chunk)))
    out["bulk_rows"] = rows

    json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
