"""Result codes explained by class, and the typed errors they become."""

import pytest

from mango_office import codes, errors


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (1000, "Action completed successfully"),
        (1164, "All operators are unavailable"),
        ("3102", "Signature mismatch: check the API salt"),
        # Unknown codes fall back to the nearest known ancestor (reference §5).
        (2219, "Usage period restriction"),
        (1090, "Action completed successfully"),
        (3199, "Invalid parameters"),
        (4999, "The command cannot be performed"),
        (5999, "Server error"),
        (6123, "Fax error"),
    ],
)
def test_describe_by_class(code, expected):
    assert codes.describe(code) == expected


@pytest.mark.parametrize("code", [None, "abc", 9999, 42])
def test_describe_unknown(code):
    assert codes.describe(code).startswith("Unknown result")


def test_success_and_class():
    assert (
        codes.is_success(1000) and codes.is_success("1100") and codes.is_success(1001)
    )
    assert (
        not codes.is_success(3100)
        and not codes.is_success(None)
        and not codes.is_success("x")
    )
    assert [codes.code_class(c) for c in (1000, 2240, 3104, 4101, 5008)] == [
        1,
        2,
        3,
        4,
        5,
    ]


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (2240, errors.MangoBillingError),
        (3104, errors.MangoRequestError),
        (3102, errors.MangoAuthError),
        (3105, errors.MangoAuthError),
        (4101, errors.MangoCannotPerformError),
        (5003, errors.MangoServerError),
        (4290, errors.MangoRateLimited),
        (5008, errors.MangoRateLimited),
    ],
)
def test_error_for_code(code, cls):
    exc = errors.error_for_code(code, http_status=200)
    assert type(exc) is cls
    assert exc.code == code
    assert str(code) in str(exc)
    assert exc.meaning == codes.describe(code)


def test_error_for_code_keeps_description_and_fields():
    exc = errors.error_for_code("3100", "period too long", {"date_to": 3111}, 200)
    assert isinstance(exc, errors.MangoRequestError)
    assert (
        exc.code == 3100
        and exc.fields == {"date_to": 3111}
        and "period too long" in str(exc)
    )


def test_error_for_garbage_code():
    assert isinstance(errors.error_for_code("oops"), errors.MangoProtocolError)
