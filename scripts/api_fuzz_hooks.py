"""schemathesis hooks for scripts/api-fuzz.

An Idempotency-Key names one request: the same key with another body is 422
`idempotency_key_reused` by contract (tests/cart_orders.rs covers it). The
fuzzer draws few distinct keys, so it would keep reusing them; each request
meant to be valid that carries a key gets a fresh one instead. Requests
meant to be refused are left alone, so their refusal is still tested.
"""

import re
import uuid

import schemathesis

WELL_FORMED = re.compile(r"[\t -~]*[!-~][\t -~]*")


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.meta is None or case.meta.generation.mode.is_negative:
        return
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() != "idempotency-key":
            continue
        key = headers[name]
        if isinstance(key, str) and len(key) <= 255 and WELL_FORMED.fullmatch(key):
            headers[name] = uuid.uuid4().hex
