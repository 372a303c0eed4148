"""How to reach a directory and whom to read there: servers, bases, filters, TLS.

``DirectoryConfig`` checks itself when built (unknown kind, no server, an
unbalanced filter) and says what is weak about it (plain LDAP, no certificate
check, anonymous bind) in ``warning_codes``.
"""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .identity import normalize_dn
from .presets import KINDS, PRESETS
from .settings import settings_fingerprint

SCOPES = ("subtree", "onelevel", "base")
_DEFAULT_PORTS = {"ldaps": 636, "starttls": 389, "plain": 389}


@dataclass(frozen=True)
class DirectoryServer:
    host: str
    port: int | None = None
    security: str = "ldaps"  # ldaps | starttls | plain

    def __post_init__(self):
        if self.security not in _DEFAULT_PORTS:
            raise ValueError(
                f"unknown security {self.security!r}: use ldaps, starttls or plain"
            )
        if not self.host:
            raise ValueError("a directory server needs a host")
        if self.port is None:
            object.__setattr__(self, "port", _DEFAULT_PORTS[self.security])
        object.__setattr__(self, "port", int(self.port))

    @classmethod
    def from_uri(cls, uri, security=None):
        """``ldaps://h:636`` → LDAPS, ``ldap+starttls://h`` → StartTLS, ``ldap://h`` →
        plain (unless
        ``security`` says otherwise)."""
        parts = urlsplit(uri.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("ldap", "ldaps", "ldap+starttls"):
            raise ValueError(f"unsupported directory URI {uri!r}")
        guessed = {"ldaps": "ldaps", "ldap+starttls": "starttls", "ldap": "plain"}[
            scheme
        ]
        return cls(parts.hostname or "", parts.port, security or guessed)

    @property
    def uri(self):
        scheme = {"ldaps": "ldaps", "starttls": "ldap+starttls", "plain": "ldap"}[
            self.security
        ]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class SearchBase:
    dn: str
    scope: str = "subtree"

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(
                f"unknown scope {self.scope!r}: use subtree, onelevel or base"
            )


def _as_server(value):
    if isinstance(value, DirectoryServer):
        return value
    return DirectoryServer.from_uri(str(value))


def _as_base(value):
    if isinstance(value, SearchBase):
        return value
    if isinstance(value, (tuple, list)):
        return SearchBase(*value)
    return SearchBase(str(value))


@dataclass
class DirectoryConfig:
    servers: tuple
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)
    kind: str = "openldap"
    bases: tuple = ()
    user_filter: str = ""
    root_filter: str | None = None
    attributes: tuple = ()
    group_dns: tuple = ()
    group_bases: tuple = ()
    ca_pem: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    verify_certificate: bool = True
    check_hostname: bool = True
    page_size: int = 500
    timeout: float = 10.0
    clock_skew: int = 300
    # Attributes the caller will look at (None: all that were read). Everything
    # else is read for the account state and groups, then dropped from the entries:
    # a 10,000-person scan is held in memory whole for the planner.
    keep_attributes: tuple | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(
                f"unknown directory kind {self.kind!r}: use 'ad' or 'openldap'"
            )
        if isinstance(self.servers, (str, DirectoryServer)):
            self.servers = (self.servers,)
        self.servers = tuple(_as_server(s) for s in self.servers)
        if not self.servers:
            raise ValueError("at least one directory server is needed")
        if isinstance(self.bases, (str, SearchBase)):
            self.bases = (self.bases,)
        self.bases = tuple(_as_base(b) for b in self.bases)
        if not self.bases:
            raise ValueError("at least one base DN is needed")
        self.group_bases = tuple(_as_base(b) for b in self.group_bases or ())
        self.attributes = tuple(self.attributes or ())
        self.group_dns = tuple(self.group_dns or ())
        if self.keep_attributes is not None:
            self.keep_attributes = tuple(
                a.split(";", 1)[0].lower() for a in self.keep_attributes
            )
        for flt in (self.user_filter, self.root_filter):
            if flt:
                _check_filter(flt)
        if not 1 <= int(self.page_size) <= 5000:
            raise ValueError("page size must be between 1 and 5000")

    @property
    def preset(self):
        return PRESETS[self.kind]

    @property
    def effective_root_filter(self):
        return _wrap(self.root_filter or self.preset.root_filter)

    @property
    def search_filter(self):
        parts = [self.effective_root_filter]
        if self.user_filter and self.user_filter.strip():
            parts.append(_wrap(self.user_filter))
        return parts[0] if len(parts) == 1 else "(&" + "".join(parts) + ")"

    def read_attributes(self):
        names = {a.lower(): a for a in self.preset.attributes}
        for extra in self.attributes:
            if extra and extra.lower() != "dn":
                names.setdefault(extra.lower(), extra)
        return sorted(names.values(), key=str.lower)

    def scope_fingerprint(self):
        """Changes whenever who is in scope could change (kind, bases, filters)."""
        return settings_fingerprint(
            self.kind,
            sorted((normalize_dn(b.dn), b.scope) for b in self.bases),
            " ".join(self.effective_root_filter.split()),
            " ".join((self.user_filter or "").split()),
        )

    def warning_codes(self):
        """Weak spots of these settings, as ``(code, server URI or None)``; the codes
        are those of ``WARNING_TEXTS``."""
        out = [
            ("plain", server.uri)
            for server in self.servers
            if server.security == "plain"
        ]
        if not self.verify_certificate:
            out.append(("no_verify", None))
        elif not self.check_hostname:
            out.append(("no_hostname_check", None))
        if not self.bind_dn:
            out.append(("anonymous", None))
        return out

    def warnings(self):
        return [
            WARNING_TEXTS[code].format(server=server)
            for code, server in self.warning_codes()
        ]


def _wrap(flt):
    flt = flt.strip()
    return flt if flt.startswith("(") else f"({flt})"


def _check_filter(flt):
    depth = 0
    for char in _wrap(flt).replace("\\(", "").replace("\\)", ""):
        depth += char == "("
        depth -= char == ")"
        if depth < 0:
            break
    if depth != 0:
        raise ValueError(f"unbalanced parentheses in LDAP filter {flt!r}")


WARNING_TEXTS = {
    "plain": "{server}: plain LDAP sends the bind password and the directory "
    "unencrypted; use LDAPS or StartTLS",
    "no_verify": "Certificate verification is off: anyone on the network path can "
    "impersonate the server",
    "no_hostname_check": "Host name checking is off: any certificate from the "
    "trusted CA is accepted",
    "anonymous": "Anonymous bind: most directories hide users and groups from "
    "anonymous reads",
}
