"""What the simulator accepts on /vpbx/<method>, sent the way third-party clients
send it: urllib, http.client, requests with ``data=``, ``files=`` and ``json=``,
multipart built by hand; and the places where the reference fixes a detail (a
short extension as the destination, the 128-byte command_id).

Every request here gets a result the lockout would count, so each test that
provokes a 3xxx steps past the two-minute window before the next request.
"""

import base64
import hashlib
import http.client
import json
import urllib.parse
import urllib.request
import uuid

import pytest
import requests

from mango_office import signing
from mango_office.simulator import SimClock, run_simulator

KEY, SALT = "third-party-key", "third-party-salt"


@pytest.fixture
def sim():
    with run_simulator(KEY, SALT, clock=SimClock(frozen=True)) as simulator:
        simulator.configure(command_events_delay_ms=0, auto_play=False)
        yield simulator


def form_for(payload, key=KEY, salt=SALT):
    return signing.build_form(key, salt, payload)


def answer(response):
    assert response.headers["Content-Type"].startswith("application/json"), (
        response.status_code,
        response.text,
    )
    return response.json()


def step_past_lockout(sim):
    sim.advance(121)


# ---- the two encodings real clients use --------------------------------------------
def test_urlencoded_from_plain_urllib(sim):
    # urllib sets application/x-www-form-urlencoded for a bytes body by itself.
    data = urllib.parse.urlencode(form_for({})).encode()
    with urllib.request.urlopen(f"{sim.base_url}/account/balance", data) as response:
        body = json.loads(response.read())
    assert body["result"] == 1000 and body["currency"] == "RUB"


def test_multipart_from_requests_files(sim):
    form = form_for({"extension": "101"})
    files = {name: (None, value) for name, value in form.items()}
    response = requests.post(
        f"{sim.base_url}/config/users/request", files=files, timeout=10
    )
    assert response.request.headers["Content-Type"].startswith("multipart/form-data")
    [user] = answer(response)["users"]
    assert user["telephony"]["extension"] == "101"


def test_multipart_parts_sent_as_files(sim):
    # files={"json": "..."} gives each part a filename and its own content type.
    form = form_for({})
    files = {
        "vpbx_api_key": ("key.txt", form["vpbx_api_key"], "text/plain"),
        "sign": ("sign.txt", form["sign"]),
        "json": ("payload.json", form["json"], "application/json"),
    }
    response = requests.post(f"{sim.base_url}/roles", files=files, timeout=10)
    assert answer(response)["result"] == 1000


def test_multipart_built_by_hand_with_non_ascii_and_base64(sim):
    """As PHP cURL or a browser's FormData sends it: quoted boundary, CRLF, a
    base64-encoded part, Cyrillic in the JSON."""
    payload = {
        "name": "Ирина Новикова",
        "access_role_id": 3,
        "extension": "150",
    }
    form = form_for(payload)
    boundary = f"----sim{uuid.uuid4().hex}"
    parts = [
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="vpbx_api_key"'
            f"\r\n\r\n{form['vpbx_api_key']}\r\n"
        ).encode(),
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="sign"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + base64.b64encode(form["sign"].encode())
        + b"\r\n",
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="json"\r\n'
            "Content-Type: application/json; charset=utf-8\r\n\r\n"
        ).encode()
        + form["json"].encode("utf-8")
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    request = urllib.request.Request(
        f"{sim.base_url}/member/create",
        data=b"".join(parts),
        headers={"Content-Type": f'multipart/form-data; boundary="{boundary}"'},
    )
    with urllib.request.urlopen(request) as response:
        body = json.loads(response.read())
    assert body["result"] == 1000
    assert sim.state.users[body["user_id"]]["name"] == "Ирина Новикова"


def test_chunked_body_as_streaming_clients_send_it(sim):
    data = urllib.parse.urlencode(form_for({})).encode()

    def stream():
        yield data[:10]
        yield data[10:]

    response = requests.post(f"{sim.base_url}/roles", data=stream(), timeout=10)
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert answer(response)["result"] == 1000


def test_no_content_type_is_read_as_urlencoded(sim):
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    body = urllib.parse.urlencode(form_for({})).encode()
    connection.putrequest("POST", "/vpbx/roles")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    assert json.loads(response.read())["result"] == 1000
    connection.close()


def test_charset_parameter_changes_nothing(sim):
    response = requests.post(
        f"{sim.base_url}/roles",
        data=urllib.parse.urlencode(form_for({})),
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=windows-1251"
        },
        timeout=10,
    )
    assert answer(response)["result"] == 1000


# ---- anything else: what Mango's form reader makes of it ----------------------------
def test_json_body_is_missing_every_field(sim):
    response = requests.post(f"{sim.base_url}/roles", json=form_for({}), timeout=10)
    body = answer(response)
    assert body["result"] == 3103
    assert set(body["fields"]) == {"vpbx_api_key", "sign", "json"}
    assert "JSON" in body["description"] and "form fields" in body["description"]


def test_query_string_is_not_read(sim):
    query = urllib.parse.urlencode(form_for({}))
    response = requests.post(f"{sim.base_url}/roles?{query}", timeout=10)
    body = answer(response)
    assert body["result"] == 3103
    assert "query string" in body["description"]
    step_past_lockout(sim)
    # In the body it counts, whatever the query holds.
    response = requests.post(
        f"{sim.base_url}/roles?json=garbage", data=form_for({}), timeout=10
    )
    assert answer(response)["result"] == 1000


def test_get_is_refused_whatever_it_carries(sim):
    query = urllib.parse.urlencode(form_for({}))
    assert (
        answer(requests.get(f"{sim.base_url}/roles?{query}", timeout=10))["result"]
        == 3101
    )


def test_repeated_fields_the_last_one_counts(sim):
    good = form_for({})
    stale = form_for({"stale": True})
    pairs = [
        ("vpbx_api_key", KEY),
        ("sign", stale["sign"]),
        ("json", stale["json"]),
        ("sign", good["sign"]),
        ("json", good["json"]),
    ]
    response = requests.post(
        f"{sim.base_url}/roles",
        data=urllib.parse.urlencode(pairs),
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer(response)["result"] == 1000
    # Multipart alike; here the last sign is the stale one.
    files = [
        ("vpbx_api_key", (None, KEY)),
        ("json", (None, good["json"])),
        ("sign", (None, good["sign"])),
        ("sign", (None, stale["sign"])),
    ]
    response = requests.post(f"{sim.base_url}/roles", files=files, timeout=10)
    assert answer(response)["result"] == 3102


def test_missing_and_empty_fields_are_named(sim):
    response = requests.post(
        f"{sim.base_url}/roles",
        data={"vpbx_api_key": KEY, "sign": "", "unknown": "x"},
        timeout=10,
    )
    body = answer(response)
    assert body["result"] == 3103
    assert body["fields"] == {"sign": 3103, "json": 3103}


def test_multipart_without_boundary_is_3103(sim):
    response = requests.post(
        f"{sim.base_url}/roles",
        data=b"vpbx_api_key=x",
        headers={"Content-Type": "multipart/form-data"},
        timeout=10,
    )
    body = answer(response)
    assert body["result"] == 3103
    assert "multipart" in body["description"]


def test_bad_chunked_body_is_a_400_not_a_crash(sim):
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    connection.putrequest("POST", "/vpbx/roles")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders(b"zz\r\nnot a chunk\r\n0\r\n\r\n")
    response = connection.getresponse()
    assert response.status == 400
    connection.close()
    # The server is still there.
    assert (
        answer(requests.post(f"{sim.base_url}/roles", data=form_for({}), timeout=10))[
            "result"
        ]
        == 1000
    )


def test_signature_is_checked_over_the_bytes_sent(sim):
    # A JSON text in windows-1251, signed over those very bytes as a PHP client
    # would: the signature holds, the JSON is no UTF-8 -> 3400.
    raw_json = '{"name":"Иван"}'.encode("cp1251")
    sign = hashlib.sha256(KEY.encode() + raw_json + SALT.encode()).hexdigest()
    body = b"&".join(
        [
            b"vpbx_api_key=" + urllib.parse.quote_from_bytes(KEY.encode()).encode(),
            b"sign=" + sign.encode(),
            b"json=" + urllib.parse.quote_from_bytes(raw_json).encode(),
        ]
    )
    response = requests.post(
        f"{sim.base_url}/roles",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert answer(response)["result"] == 3400


def test_upper_case_signature_is_accepted(sim):
    form = form_for({})
    form["sign"] = form["sign"].upper()
    assert (
        answer(requests.post(f"{sim.base_url}/roles", data=form, timeout=10))["result"]
        == 1000
    )


@pytest.mark.parametrize(
    "json_text",
    ['{"a":NaN}', '{"a":Infinity}', '{"a":' * 600 + "1" + "}" * 600, "[]", "7"],
)
def test_json_the_php_reader_refuses_is_3400(sim, json_text):
    form = form_for(json_text)
    assert (
        answer(requests.post(f"{sim.base_url}/roles", data=form, timeout=10))["result"]
        == 3400
    )


# ---- details the reference fixes ----------------------------------------------------
def test_callback_to_any_extension_or_spelled_number(sim):
    """§3.1: to_number is "an extension, a group extension or any number", and
    the PBX normalises numbers; extensions of two digits exist (§2.4's "29")."""
    sim.configure(auto_play=True)
    for to_number, dialled in (
        ("29", "29"),
        ("+7 (903) 123-45-67", "79031234567"),
        ("8-903-123.45.67", "89031234567"),
    ):
        payload = {
            "command_id": f"cid-{dialled}",
            "from": {"extension": "101"},
            "to_number": to_number,
        }
        body = answer(
            requests.post(
                f"{sim.base_url}/commands/callback", data=form_for(payload), timeout=10
            )
        )
        assert body == {"result": 1000, "command_id": f"cid-{dialled}"}, to_number
        sim.advance(1)
    sim.wait_idle(10)
    called = {
        e["payload"]["command_id"]: e["payload"]["to"].get("number")
        for e in sim.events(path="events/call")
        if e["payload"].get("from", {}).get("taken_from_call_id")
    }
    assert called == {
        "cid-29": "29",
        "cid-79031234567": "79031234567",
        "cid-89031234567": "89031234567",
    }


def test_command_id_is_at_most_128_bytes(sim):
    payload = {"from": {"extension": "101"}, "to_number": "79031234567"}
    ok = dict(payload, command_id="я" * 64)  # 128 bytes
    assert (
        answer(
            requests.post(
                f"{sim.base_url}/commands/callback", data=form_for(ok), timeout=10
            )
        )["result"]
        == 1000
    )
    too_long = dict(payload, command_id="c" * 129)
    body = answer(
        requests.post(
            f"{sim.base_url}/commands/callback", data=form_for(too_long), timeout=10
        )
    )
    assert body["result"] == 3104 and body["fields"] == {"command_id": 3104}
    step_past_lockout(sim)
    body = answer(
        requests.post(
            f"{sim.base_url}/commands/call/hangup",
            data=form_for({"call_id": "x", "command_id": "h" * 200}),
            timeout=10,
        )
    )
    assert body["result"] == 3104


def test_callback_group_takes_spelled_numbers(sim):
    payload = {
        "command_id": "grp-1",
        "from": "+7 (916) 555-12-34",
        "to": "200",
        "line_number": "74951234567",
    }
    body = answer(
        requests.post(
            f"{sim.base_url}/commands/callback_group",
            data=form_for(payload),
            timeout=10,
        )
    )
    assert body == {"result": 1000, "command_id": "grp-1"}
