"""Typed errors of the Mango API, each carrying the result code and its meaning."""

from . import codes


class MangoError(Exception):
    """Base of everything the client raises."""

    code = None

    def __init__(
        self, message, code=None, description=None, fields=None, http_status=None
    ):
        super().__init__(message)
        self.code = code
        self.description = description
        self.fields = fields or {}
        self.http_status = http_status


class MangoTransportError(MangoError):
    """The server could not be reached, or the TLS handshake failed."""


class MangoCertificateError(MangoTransportError):
    """The server's certificate did not verify."""


class MangoProtocolError(MangoError):
    """An answer that does not follow Mango's protocol (not JSON, unexpected shape)."""


class MangoResultError(MangoError):
    """Mango answered with a result code other than success."""

    def __init__(self, code, description=None, fields=None, http_status=None):
        meaning = codes.describe(code)
        text = f"{meaning} ({code})"
        if description and description != meaning:
            text = f"{text}: {description}"
        super().__init__(text, code, description or meaning, fields, http_status)
        self.meaning = meaning


class MangoBillingError(MangoResultError):
    """2xxx: the account or tariff does not allow it."""


class MangoRequestError(MangoResultError):
    """3xxx: the request was invalid. Never retried: a second one locks the API."""


class MangoAuthError(MangoRequestError):
    """3102/3105: wrong key or salt."""


class MangoCannotPerformError(MangoResultError):
    """4xxx: valid request that the PBX cannot perform right now."""


class MangoServerError(MangoResultError):
    """5xxx: failure on Mango's side."""


class MangoReportFailed(MangoServerError):
    """An asynchronous report (extended statistics) ended as ``error``, ``cancel``
    or ``not-found``: Mango will not build it; ``status`` says which."""

    def __init__(self, status):
        super().__init__(5000, f"Mango's extended report ended with status {status!r}")
        self.status = status


class MangoReportLate(MangoServerError):
    """An asynchronous report was not ready within the time we wait for it."""

    def __init__(self, timeout):
        super().__init__(5011, f"Mango's report was not ready within {timeout} s")
        self.timeout = timeout


class MangoRateLimited(MangoResultError):
    """HTTP 429 / 4290 / 5008: over the rate limit; the client backs off."""


class MangoDeferred(MangoError):
    """Not sent: deferrable work waits while a recent 3xxx could become a lockout."""


class MangoLockedOut(MangoError):
    """HTTP 401: the API is locked for 2 minutes after a second invalid request."""


class MangoLimiterUnavailable(MangoError):
    """Not sent: the rate limiter shared through the database could not be used,
    and sending without it could exceed Mango's limits for every worker."""


def error_for_code(code, description=None, fields=None, http_status=None):
    """The typed exception for a non-success result code (unknown codes by class)."""
    try:
        code = int(code)
    except (TypeError, ValueError):
        return MangoProtocolError(
            f"Unexpected result code {code!r}", http_status=http_status
        )
    if code in codes.SLOW_DOWN_CODES:
        cls = MangoRateLimited
    elif code in (3102, 3105):
        cls = MangoAuthError
    else:
        cls = {
            2: MangoBillingError,
            3: MangoRequestError,
            4: MangoCannotPerformError,
            5: MangoServerError,
        }.get(codes.code_class(code), MangoResultError)
    return cls(code, description, fields, http_status)
