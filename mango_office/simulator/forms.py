"""How the simulator reads the form of an API request, and why that way.

Mango documents one request format (reference §1.2): a POST whose body carries the
form fields ``vpbx_api_key``, ``sign`` and ``json``. Real clients send that body in
both form encodings, and Mango accepts both:

* ``application/x-www-form-urlencoded`` (curl ``-d``, requests ``data=``, PHP's
  ``http_build_query``, urllib);
* ``multipart/form-data`` (curl ``-F``, requests ``files=``, PHP cURL with an array,
  browsers' ``FormData``). A part's ``filename`` changes nothing: its content is
  the field's value. ``Content-Transfer-Encoding`` (base64, quoted-printable) is
  undone.

Where the reference is silent the simulator is lenient the way a form reader is,
and says so in the 3103 description when that leaves a field missing:

* **Duplicate fields**: the last one counts. Mango's error bodies are Yii's
  (``{"name", "message", "code", "status"}``), so PHP reads the form, and PHP keeps
  the last of repeated names.
* **No Content-Type, or another non-form type** (``text/plain``): the body is read
  as urlencoded, which is what such bodies hold in practice.
* **A JSON body** (``application/json`` or any ``+json`` type): not read. Mango
  reads form fields only, so such a request lacks all three: 3103, which counts
  towards the two-minute lockout like any 3xxx.
* **The query string** of a POST is not read (a form is its body): fields only
  there are missing, 3103. A GET is refused with 3101 whatever it carries.
* **Bytes**: values are kept byte for byte (undecodable bytes survive as
  surrogate escapes), so the signature is checked over exactly what was sent, as
  a PHP server does; a ``charset`` parameter changes nothing.
* A **missing or empty** field is answered 3103, naming each missing field in
  ``fields``. Unknown extra fields are ignored.
"""

import email.parser
import email.policy
import urllib.parse

REQUIRED_FIELDS = ("vpbx_api_key", "sign", "json")
FORM_URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


class Form(dict):
    """The fields of a request (``{name: str}``) and how its body was read.

    :ivar str encoding: ``urlencoded``, ``multipart``, ``json`` (not read),
        ``none`` (no body) or ``unreadable`` (a multipart body that does not parse)
    :ivar list query_fields: required fields that came in the query string only
    """

    def __init__(self, fields=(), encoding="none", query_fields=()):
        super().__init__(fields)
        self.encoding = encoding
        self.query_fields = list(query_fields)

    def why_missing(self):
        """A sentence on why required fields may be absent, or ''."""
        notes = []
        if self.encoding == "json":
            notes.append(
                "the body is JSON: send vpbx_api_key, sign and json as form fields "
                f"({FORM_URLENCODED} or {MULTIPART})"
            )
        elif self.encoding == "unreadable":
            notes.append("the multipart body could not be read (boundary?)")
        if self.query_fields:
            notes.append(
                "the query string is not read: "
                + ", ".join(self.query_fields)
                + " must be in the body"
            )
        return "; ".join(notes)


def _text(raw):
    return raw.decode("utf-8", "surrogateescape")


def media_type(content_type):
    """``type/subtype`` of a Content-Type header, lower case ('' when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _urlencoded(body):
    fields = {}
    pairs = urllib.parse.parse_qsl(
        _text(body),
        keep_blank_values=True,
        encoding="utf-8",
        errors="surrogateescape",
    )
    for name, value in pairs:
        fields[name] = value  # the last of repeated names wins
    return fields


def _multipart(content_type, body):
    """Fields of a multipart/form-data body, or None when it does not parse."""
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode(
        "latin-1", "replace"
    )
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        header + body
    )
    if not message.is_multipart() or message.defects:
        return None
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True)
        if payload is None:
            payload = b""
        fields[str(name)] = _text(payload)
    return fields


def read_form(content_type, body, query=""):
    """The form fields of a POST to ``/vpbx/<method>``, as Mango reads them.

    :param str content_type: the request's Content-Type header (may be empty)
    :param bytes body: the request body, already de-chunked
    :param str query: the URL's query string (only to explain a 3103)
    :rtype: Form
    """
    kind = media_type(content_type)
    if not body:
        fields, encoding = {}, "none"
    elif kind == MULTIPART:
        fields = _multipart(content_type, body)
        encoding = "multipart" if fields is not None else "unreadable"
        fields = fields or {}
    elif kind == "application/json" or kind.endswith("+json"):
        fields, encoding = {}, "json"
    else:
        fields, encoding = _urlencoded(body), "urlencoded"
    in_query = (
        set(_urlencoded(query.encode("utf-8", "surrogateescape"))) if query else ()
    )
    query_only = [n for n in REQUIRED_FIELDS if n in in_query and not fields.get(n)]
    return Form(fields, encoding, query_only)
