"""The baseline for the cold-start benchmark: submit-order's job in Python under awslambdaric.

Parses an API Gateway HTTP API (v2) request, checks the fields an order needs, writes each order
with a conditional put (record_id as the idempotency key, 24 h TTL) and publishes OrderSubmitted,
the way handlers/submit-order does, with boto3 clients built once per container.
"""
import json
import os
import time
from decimal import Decimal

import boto3

TABLE = boto3.resource("dynamodb").Table(os.environ["ORDERS_TABLE"])
EVENTS = boto3.client("events")
BUS = os.environ["EVENT_BUS_NAME"]
REQUIRED = ("record_id", "market", "delivery_date", "zone", "portfolio", "side", "periods")


def handler(event, context):
    try:
        orders = json.loads(event.get("body") or "", parse_float=Decimal)
    except ValueError as e:
        return {"statusCode": 400, "body": json.dumps({"error": "invalid_orders", "message": str(e)})}
    errors = [f"$[{i}].{f}: required field is missing" for i, o in enumerate(orders) for f in REQUIRED if f not in o]
    if errors:
        return {"statusCode": 400, "body": json.dumps({"error": "invalid_orders", "errors": errors})}
    now = int(time.time())
    statuses, entries = [], []
    for o in orders:
        try:
            TABLE.put_item(
                Item={"record_id": o["record_id"], "state": "RECEIVED", "version": 1, "attempt": 0, "ttl": now + 86400,
                      "record": json.dumps(o, default=str)},
                ConditionExpression="attribute_not_exists(record_id)",
            )
            statuses.append({"record_id": o["record_id"], "status": "accepted"})
            entries.append({"Source": "energy.orders", "DetailType": "OrderSubmitted", "EventBusName": BUS,
                            "Detail": json.dumps({k: o[k] for k in REQUIRED if k != "periods"})})
        except TABLE.meta.client.exceptions.ConditionalCheckFailedException:
            statuses.append({"record_id": o["record_id"], "status": "duplicate"})
    for i in range(0, len(entries), 10):
        EVENTS.put_events(Entries=entries[i:i + 10])
    return {"statusCode": 202, "headers": {"content-type": "application/json"}, "body": json.dumps({"orders": statuses})}
