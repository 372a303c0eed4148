"""Reading Active Directory / OpenLDAP with ldap3, safely.

Rules this module keeps (reference ldap-sync.md §4, §5):

* certificates are verified by default, against a CA given as PEM data or file, with the
  host name checked by the standard library (ldap3's own ``Tls()`` verifies nothing by
  default; see :mod:`.tls`);
* every page of a paged search is checked: ``sizeLimitExceeded`` and any other
  non-success result make the scan *incomplete*, never silently shorter;
* an outage or error never raises out of a scan: the caller gets ``complete=False`` and
  the entries read so far (enough to create/update, never enough to archive anyone);
* identities are keyed by ``objectGUID`` / ``entryUUID``, never by DN or login.
"""

import contextlib
import datetime as dt
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import ldap3
from ldap3.core.exceptions import (
    LDAPException,
    LDAPInvalidCredentialsResult,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_bytes, escape_filter_chars

from .config import SearchBase
from .entries import DirectoryEntry, ScanResult, Watermark
from .errors import (
    DirectoryBindError,
    DirectoryCertificateError,
    DirectoryConnectionError,
    DirectoryError,
    DirectoryIncompleteError,
    DirectorySearchError,
)
from .identity import (
    ad_account_disabled,
    guid_to_ad_bytes,
    normalize_dn,
    normalize_guid,
)
from .tls import _is_certificate_problem, _VerifyingTls

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"


MATCHING_RULE_IN_CHAIN = "1.2.840.113556.1.4.1941"


_SCOPE_MAP = {"subtree": ldap3.SUBTREE, "onelevel": ldap3.LEVEL, "base": ldap3.BASE}


_RESULT_NAMES = {
    3: "timeLimitExceeded",
    4: "sizeLimitExceeded",
    10: "referral",
    11: "adminLimitExceeded",
    32: "noSuchObject",
    50: "insufficientAccessRights",
    51: "busy",
    52: "unavailable",
}


@dataclass
class ConnectionReport:
    ok: bool
    server: str = ""
    security: str = ""
    tls_version: str | None = None
    bound_as: str | None = None
    match_count: int | None = None
    warnings: list = field(default_factory=list)
    error: str | None = None
    errors: list = field(default_factory=list)
    # The same, for a caller that words them itself: WARNING_TEXTS codes as
    # (code, server), and the failure as DirectoryError.to_dict() (``failures``:
    # one per server a failover tried).
    warning_codes: list = field(default_factory=list)
    failure: dict | None = None
    failures: list = field(default_factory=list)

    def to_dict(self):
        return dict(self.__dict__)


def _first(values):
    return values[0] if values else None


def _generalized_time(moment):
    return moment.astimezone(dt.timezone.utc).strftime("%Y%m%d%H%M%SZ")


def _parse_generalized(text):
    match = re.match(r"(\d{14})", text or "")
    if not match:
        return None
    return dt.datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(
        tzinfo=dt.timezone.utc
    )


class _Session:
    """One bound connection to one server."""

    def __init__(self, conn, server):
        self.conn = conn
        self.server = server

    def close(self):
        _quiet_close(self.conn)


class DirectoryReader:
    def __init__(self, config, *, clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self._session = None
        self._root_dse = None
        keep = config.keep_attributes
        # the planner re-checks the AD account state at its own "now"
        self._keep = (
            None
            if keep is None
            else frozenset(keep)
            | {
                config.preset.anchor_attribute.lower(),
                "useraccountcontrol",
                "accountexpires",
            }
        )

    # -- connection --------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._session is not None:
            self._session.close()
            self._session = None
        self._root_dse = None

    def _tls(self):
        cfg = self.config
        return _VerifyingTls(
            cfg.ca_pem or None,
            cfg.ca_file or None,
            cfg.verify_certificate,
            cfg.check_hostname,
        )

    def _open(self, server):
        cfg = self.config
        srv = ldap3.Server(
            server.host,
            port=server.port,
            use_ssl=server.security == "ldaps",
            tls=None if server.security == "plain" else self._tls(),
            get_info=ldap3.NONE,
            connect_timeout=cfg.timeout,
        )
        conn = ldap3.Connection(
            srv,
            user=cfg.bind_dn or None,
            password=cfg.bind_password or None,
            authentication=ldap3.SIMPLE if cfg.bind_dn else ldap3.ANONYMOUS,
            auto_bind=ldap3.AUTO_BIND_NONE,
            raise_exceptions=False,
            read_only=True,
            receive_timeout=max(1, int(cfg.timeout)),
            auto_referrals=False,
            return_empty_attributes=False,
        )
        try:
            conn.open()
            if server.security == "starttls" and not conn.start_tls():
                raise DirectoryConnectionError(
                    f"{server.uri}: StartTLS refused",
                    server=server.uri,
                    reason="StartTLS refused",
                )
        except DirectoryError:
            _quiet_close(conn)
            raise
        except (LDAPException, OSError, ssl.SSLError) as exc:
            _quiet_close(conn)
            reason = _short(exc)
            if _is_certificate_problem(exc):
                raise DirectoryCertificateError(
                    f"{server.uri}: certificate rejected: {reason}",
                    server=server.uri,
                    reason=reason,
                ) from None
            if isinstance(exc, LDAPStartTLSError):
                raise DirectoryConnectionError(
                    f"{server.uri}: StartTLS failed: {reason}",
                    server=server.uri,
                    reason=f"StartTLS: {reason}",
                ) from None
            raise DirectoryConnectionError(
                f"{server.uri}: cannot connect: {reason}",
                server=server.uri,
                reason=reason,
            ) from None
        try:
            ok = conn.bind()
        except LDAPInvalidCredentialsResult:
            ok = False
        except (LDAPException, OSError) as exc:
            _quiet_close(conn)
            reason = _short(exc)
            if _is_certificate_problem(exc):
                raise DirectoryCertificateError(
                    f"{server.uri}: certificate rejected: {reason}",
                    server=server.uri,
                    reason=reason,
                ) from None
            raise DirectoryConnectionError(
                f"{server.uri}: connection lost during bind: {reason}",
                server=server.uri,
                reason=reason,
            ) from None
        if not ok:
            result = conn.result or {}
            _quiet_close(conn)
            reason = (
                f"{result.get('description')} {result.get('message') or ''}".strip()
            )
            raise DirectoryBindError(
                f"{server.uri}: bind as {self.config.bind_dn or 'anonymous'} refused: "
                f"{reason}",
                server=server.uri,
                reason=reason,
                result=result.get("description"),
            )
        return _Session(conn, server)

    def connect(self):
        """Bind to the first server of the failover list that answers; errors name every
        server tried."""
        if self._session is not None:
            return self._session
        failures = []
        for server in self.config.servers:
            try:
                self._session = self._open(server)
                self._root_dse = None
                return self._session
            except DirectoryError as exc:
                failures.append(exc)
        message = "; ".join(str(f) for f in failures)
        kinds = {type(f) for f in failures}
        if DirectoryBindError in kinds:
            kind = DirectoryBindError
        elif kinds == {DirectoryCertificateError}:
            kind = DirectoryCertificateError
        else:
            kind = DirectoryConnectionError
        first = next((f for f in failures if isinstance(f, kind)), None)
        raise kind(
            message,
            server=first and first.server,
            reason=first and first.reason,
            result=first and first.result,
            failures=failures,
        )

    # -- low-level searches ------------------------------------------------------------

    def _search_pages(
        self, base, scope, flt, attributes, progress=None, page_size=None
    ):
        """Yield pages of (dn, raw_attributes); raise DirectoryIncompleteError on
        anything but success."""
        session = self.connect()
        conn = session.conn
        cookie = None
        page_size = page_size or self.config.page_size
        while True:
            try:
                conn.search(
                    base,
                    flt,
                    search_scope=_SCOPE_MAP[scope],
                    attributes=attributes,
                    paged_size=page_size,
                    paged_cookie=cookie,
                    time_limit=int(self.config.timeout * 6),
                )
            except (LDAPException, OSError) as exc:
                self.close()
                reason = _short(exc)
                raise DirectoryIncompleteError(
                    f"{session.server.uri}: connection lost while reading {base}: "
                    f"{reason}",
                    server=session.server.uri,
                    reason=reason,
                    base=base,
                ) from None
            result = conn.result or {}
            code = result.get("result")
            if code != 0:
                name = _RESULT_NAMES.get(code) or result.get("description") or code
                reason = str(name) + (
                    f" ({result.get('message')})" if result.get("message") else ""
                )
                raise DirectoryIncompleteError(
                    f"{session.server.uri}: search under {base} ended with {reason}",
                    server=session.server.uri,
                    reason=reason,
                    base=base,
                    result=str(name),
                )
            page = [
                (item["dn"], item.get("raw_attributes") or {})
                for item in conn.response or ()
                if item.get("type") == "searchResEntry"
            ]
            yield page
            control = (result.get("controls") or {}).get(PAGED_RESULTS_OID)
            cookie = control["value"]["cookie"] if control else None
            if not cookie:
                break

    def _search_all(self, base, scope, flt, attributes):
        out = []
        for page in self._search_pages(base, scope, flt, attributes):
            out.extend(page)
        return out

    def root_dse(self, fresh=False):
        """Root DSE attributes; ``fresh`` re-reads the moving ones (USN, time) instead
        of the cached copy."""
        if self._root_dse is None or fresh:
            conn = self.connect().conn
            attrs = [
                "namingContexts",
                "defaultNamingContext",
                "highestCommittedUSN",
                "dsServiceName",
                "currentTime",
                "supportedControl",
            ]
            try:
                conn.search(
                    "", "(objectClass=*)", search_scope=ldap3.BASE, attributes=attrs
                )
            except (LDAPException, OSError) as exc:
                self.close()
                raise DirectoryConnectionError(
                    f"cannot read the root DSE: {_short(exc)}"
                ) from None
            raw = conn.response[0].get("raw_attributes", {}) if conn.response else {}
            self._root_dse = {
                k.lower(): [_decode(v) for v in vals] for k, vals in raw.items()
            }
        return self._root_dse

    def naming_contexts(self):
        dse = self.root_dse()
        default = dse.get("defaultnamingcontext")
        if default:
            return default
        contexts = dse.get("namingcontexts") or []
        useful = [
            c
            for c in contexts
            if not c.lower().startswith(("cn=config", "cn=monitor", "cn=subschema"))
        ]
        if useful:
            return useful
        return sorted({b.dn for b in self.config.bases})

    # -- entries -----------------------------------------------------------------------

    def _entry(self, dn, raw, keep=False):
        """A :class:`DirectoryEntry` of a raw search result; ``keep``: the
        attributes to keep (``False``: the configured ``keep_attributes``)."""
        anchor_attr = self.config.preset.anchor_attribute.lower()
        attributes = {}
        anchor_raw = None
        for name, values in raw.items():
            key = name.split(";", 1)[0].lower()
            if key == anchor_attr:
                anchor_raw = values[0] if values else None
                continue
            if key == "objectguid" or key == "objectsid":
                continue
            attributes.setdefault(key, []).extend(_decode(v) for v in values)
        if anchor_raw is None:
            raise DirectorySearchError(
                f"{dn}: no {self.config.preset.anchor_attribute} returned (access "
                "rights?)"
            )
        if anchor_attr == "objectguid":
            anchor = normalize_guid(bytes(anchor_raw))
        else:
            anchor = normalize_guid(_decode(anchor_raw))
        attributes[anchor_attr] = [anchor]
        reason = (
            ad_account_disabled(attributes, self.clock())
            if self.config.kind == "ad"
            else None
        )
        groups = frozenset(normalize_dn(g) for g in attributes.get("memberof", []))
        keep = self._keep if keep is False else keep
        if keep is not None:
            attributes = {k: v for k, v in attributes.items() if k in keep}
        return DirectoryEntry(anchor, dn, attributes, groups, bool(reason), reason)

    def _user_pages(self, extra_filter, result, progress, memberships):
        """Yield the matching people one page at a time, their mapped groups
        (resolved beforehand, see :meth:`_memberships`) already added."""
        cfg = self.config
        flt = (
            cfg.search_filter
            if not extra_filter
            else f"(&{cfg.search_filter}{extra_filter})"
        )
        attrs = cfg.read_attributes()
        if self._keep is not None:
            # ldap3 decodes every returned value in Python: not asking for what
            # would be dropped makes a 10,000-entry read noticeably faster
            attrs = [
                a for a in attrs if a.lower() in self._keep or a.lower() == "memberof"
            ]
        # Only overlapping bases can return a person twice.
        seen = set() if len(cfg.bases) > 1 else None
        for base in cfg.bases:
            for raw_page in self._search_pages(base.dn, base.scope, flt, attrs):
                result.pages += 1
                page = []
                for dn, raw in raw_page:
                    entry = self._entry(dn, raw)
                    if seen is not None:
                        if entry.anchor in seen:
                            continue
                        seen.add(entry.anchor)
                    page.append(_with_memberships(entry, memberships))
                raw_page = None
                result.count += len(page)
                if progress:
                    progress(result.pages, result.count)
                yield page

    def claim_pages(self, extension_attributes, other_attributes=()):
        """The people in scope whose entry has one of ``extension_attributes``, a
        page at a time, each with only those, ``other_attributes`` (what names
        them), its creation time (AD ``whenCreated``, OpenLDAP ``createTimestamp``)
        and its account state: what :func:`~mango_office.directory.collect_claims`
        needs to settle, before the read, who gets a number several entries ask
        for. Raises :class:`DirectoryError` when the read fails.

        Reads the whole scope whatever the mode: a changes-only run must know who
        else, changed or not, asks for the number a changed entry asks for."""
        cfg = self.config
        names = [a for a in extension_attributes if a and a.lower() != "dn"]
        if not names:
            return
        present = "".join(f"({escape_filter_chars(a)}=*)" for a in names)
        present = present if len(names) == 1 else f"(|{present})"
        flt = f"(&{cfg.search_filter}{present})"
        attrs = {a.lower(): a for a in [*names, *other_attributes] if a}
        attrs.setdefault(
            cfg.preset.anchor_attribute.lower(), cfg.preset.anchor_attribute
        )
        created = cfg.preset.created_attribute
        if created:
            attrs.setdefault(created.lower(), created)
        if cfg.kind == "ad":
            attrs.setdefault("useraccountcontrol", "userAccountControl")
            attrs.setdefault("accountexpires", "accountExpires")
        keep = frozenset(attrs)
        seen = set() if len(cfg.bases) > 1 else None
        for base in cfg.bases:
            for raw_page in self._search_pages(
                base.dn, base.scope, flt, sorted(attrs.values(), key=str.lower)
            ):
                page = []
                for dn, raw in raw_page:
                    entry = self._entry(dn, raw, keep=keep)
                    if seen is not None:
                        if entry.anchor in seen:
                            continue
                        seen.add(entry.anchor)
                    page.append(entry)
                yield page

    # -- nested groups -----------------------------------------------------------------

    def _group_exists(self, dn):
        conn = self.connect().conn
        try:
            conn.search(
                dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["1.1"]
            )
        except (LDAPException, OSError) as exc:
            self.close()
            raise DirectoryIncompleteError(
                f"checking group {dn}: {_short(exc)}"
            ) from None
        code = (conn.result or {}).get("result")
        if code == 32:
            return False
        if code != 0:
            raise DirectoryIncompleteError(
                f"checking group {dn}: {(conn.result or {}).get('description')}"
            )
        return bool(conn.response and conn.response[0].get("type") == "searchResEntry")

    def _resolve_ad(self, result, extra_filter):
        """Transitive membership of each mapped group, asked of AD itself (matching rule
        in chain)."""
        cfg = self.config
        anchor_attr = cfg.preset.anchor_attribute
        missing = []
        members = {}
        for group in cfg.group_dns:
            if not self._group_exists(group):
                missing.append(group)
                continue
            chain = f"(memberOf:{MATCHING_RULE_IN_CHAIN}:={escape_filter_chars(group)})"
            flt = f"(&{cfg.search_filter}{extra_filter or ''}{chain})"
            found = set()
            for base in cfg.bases:
                for _dn, raw in self._search_all(
                    base.dn, base.scope, flt, [anchor_attr]
                ):
                    value = _first(
                        raw.get(anchor_attr)
                        or next(
                            (
                                v
                                for k, v in raw.items()
                                if k.lower() == anchor_attr.lower()
                            ),
                            [],
                        )
                    )
                    if value is not None:
                        found.add(normalize_guid(bytes(value)))
            members[normalize_dn(group)] = found
        return members, missing

    def _group_graph(self):
        """All groups under the group bases: normalised DN → (member DNs,
        modifyTimestamp)."""
        cfg = self.config
        bases = cfg.group_bases or tuple(
            SearchBase(dn) for dn in self.naming_contexts()
        )
        graph = {}
        for base in bases:
            rows = self._search_all(
                base.dn,
                base.scope,
                cfg.preset.group_filter,
                ["member", "uniqueMember", "modifyTimestamp", "uSNChanged"],
            )
            for dn, raw in rows:
                attrs = {
                    k.split(";", 1)[0].lower(): [_decode(v) for v in vals]
                    for k, vals in raw.items()
                }
                member_dns = set()
                for value in attrs.get("member", []) + attrs.get("uniquemember", []):
                    # uniqueMember may carry "#'0101'B" optional UID suffixes; people's
                    # DNs stay out of normalize_dn's cache (each is seen once a read)
                    member_dns.add(normalize_dn.__wrapped__(value.split("#", 1)[0]))
                graph[normalize_dn(dn)] = (
                    member_dns,
                    _first(attrs.get("modifytimestamp")),
                    _first(attrs.get("usnchanged")),
                )
        return graph

    @staticmethod
    def _closure(graph, group):
        seen_groups, members, stack = {group}, set(), [group]
        while stack:
            current = stack.pop()
            for member in graph.get(current, ((), None, None))[0]:
                if member in graph:
                    if member not in seen_groups:
                        seen_groups.add(member)
                        stack.append(member)
                else:
                    members.add(member)
        return members, seen_groups

    def _memberships(self, result, graph=None, extra_filter=None):
        """Who is in which mapped group, read before the people so that each page
        leaves the reader complete: ``("anchor"|"dn", {key: frozenset(group keys)})``
        or None when no group is mapped. Sets ``result.missing_groups``."""
        cfg = self.config
        if not cfg.group_dns:
            return None
        by_key = {}
        if cfg.kind == "ad":
            kind = "anchor"
            members, missing = self._resolve_ad(result, extra_filter)
            for group_key, anchors in members.items():
                for anchor in anchors:
                    by_key.setdefault(anchor, set()).add(group_key)
        else:
            kind = "dn"
            graph = graph if graph is not None else self._group_graph()
            missing = []
            for group in cfg.group_dns:
                key = normalize_dn(group)
                if key not in graph:
                    missing.append(group)
                    continue
                users, _groups = self._closure(graph, key)
                for user_dn in users:
                    by_key.setdefault(user_dn, set()).add(key)
        result.missing_groups = tuple(missing)
        # People share a handful of group combinations: one frozenset per combination.
        shared = {}
        return kind, {
            key: shared.setdefault(frozenset(groups), frozenset(groups))
            for key, groups in by_key.items()
        }

    # -- watermarks --------------------------------------------------------------------

    def _watermark(self):
        cfg = self.config
        if cfg.kind == "ad":
            dse = self.root_dse(fresh=True)
            usn = _first(dse.get("highestcommittedusn"))
            server_time = _parse_generalized(_first(dse.get("currenttime")))
            moment = server_time or dt.datetime.fromtimestamp(
                self.clock(), dt.timezone.utc
            )
            return Watermark(
                "ad",
                _generalized_time(moment),
                int(usn) if usn else None,
                _first(dse.get("dsservicename")) or self.connect().server.uri,
                cfg.scope_fingerprint(),
            )
        moment = dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc)
        return Watermark(
            "openldap",
            _generalized_time(moment),
            None,
            self.connect().server.uri,
            cfg.scope_fingerprint(),
        )

    # -- public API --------------------------------------------------------------------

    def test_connection(self):
        report = ConnectionReport(
            ok=False,
            warnings=self.config.warnings(),
            warning_codes=self.config.warning_codes(),
        )
        try:
            session = self.connect()
        except DirectoryError as exc:
            report.error = str(exc)
            report.failure = exc.to_dict()
            report.failures = [f.to_dict() for f in exc.failures] or [exc.to_dict()]
            return report
        report.server = session.server.uri
        report.security = session.server.security
        sock = session.conn.socket
        if isinstance(sock, ssl.SSLSocket):
            report.tls_version = sock.version()
        try:
            who = session.conn.extend.standard.who_am_i()
            report.bound_as = (
                (who or "").removeprefix("dn:").removeprefix("u:")
                or self.config.bind_dn
                or "anonymous"
            )
        except (LDAPException, OSError):
            report.bound_as = self.config.bind_dn or "anonymous"
        try:
            count = 0
            for base in self.config.bases:
                for page in self._search_pages(
                    base.dn, base.scope, self.config.search_filter, ["1.1"]
                ):
                    count += len(page)
            report.match_count = count
        except DirectoryError as exc:
            report.error = str(exc)
            report.failure = exc.to_dict()
            report.failures = [exc.to_dict()]
            return report
        report.ok = True
        return report

    def full_scan(self, progress=None):
        return self.paged_scan("full", progress=progress).collect()

    def delta_scan(self, watermark, progress=None):
        """Entries changed since ``watermark``; escalates to a full scan when a delta
        could miss something."""
        return self.paged_scan("delta", watermark, progress=progress).collect()

    def paged_scan(self, mode="full", watermark=None, progress=None):
        """The read as a :class:`PagedScan`: iterate it for lists of entries, one per
        LDAP page, then read its ``result`` (a :class:`ScanResult` without entries).

        Nothing is read before the iteration starts. Before the first page is handed
        out ``result.mode`` (a delta may escalate to a full read) and
        ``result.missing_groups`` are final, and group membership is already known,
        so each page is complete in itself."""
        if mode not in ("full", "delta"):
            raise ValueError("mode must be 'full' or 'delta'")
        if isinstance(watermark, str):
            watermark = Watermark.from_json(watermark)
        result = ScanResult(mode=mode)
        return PagedScan(result, self._scan_pages(result, watermark, progress))

    def _scan_pages(self, result, watermark, progress):
        started = time.monotonic()
        try:
            if result.mode == "delta":
                yield from self._delta_pages(result, watermark, progress)
            else:
                yield from self._full_pages(result, progress)
        finally:
            result.duration = time.monotonic() - started

    def _full_pages(self, result, progress):
        try:
            session = self.connect()
            result.server = session.server.uri
            # taken before reading: changes made meanwhile are re-read next time
            watermark = self._watermark()
            memberships = self._memberships(result)
            yield from self._user_pages(None, result, progress, memberships)
            result.watermark = watermark
            result.complete = True
        except DirectoryError as exc:
            result.errors.append(str(exc))
            result.complete = False

    def _delta_pages(self, result, watermark, progress):
        cfg = self.config
        reason = None
        if watermark is None:
            reason = "no watermark yet"
            result.escalation = "no_watermark"
        elif (
            watermark.kind != cfg.kind
            or watermark.fingerprint != cfg.scope_fingerprint()
        ):
            reason = "the directory settings changed since the watermark"
            result.escalation = "settings_changed"
        if reason is None:
            try:
                session = self.connect()
                result.server = session.server.uri
                new_mark = self._watermark()
                since = _parse_generalized(watermark.time) or dt.datetime.fromtimestamp(
                    0, dt.timezone.utc
                )
                since -= dt.timedelta(seconds=cfg.clock_skew)
                if cfg.kind == "ad":
                    if (
                        watermark.usn is not None
                        and watermark.server
                        and watermark.server == new_mark.server
                    ):
                        # uSNChanged is local to one DC (not replicated): only valid
                        # against the same DC.
                        change_filter = f"(uSNChanged>={watermark.usn + 1})"
                    else:
                        change_filter = (
                            f"(whenChanged>={since.strftime('%Y%m%d%H%M%S')}.0Z)"
                        )
                    changed = self._changed_ad_groups(change_filter)
                    memberships = (
                        None
                        if changed
                        else self._memberships(result, extra_filter=change_filter)
                    )
                else:
                    graph = self._group_graph() if cfg.group_dns else {}
                    changed = self._changed_ldap_groups(graph, since)
                    change_filter = f"(modifyTimestamp>={_generalized_time(since)})"
                    memberships = (
                        None if changed else self._memberships(result, graph=graph)
                    )
                    graph = None
                if changed:
                    self.close()
                    reason = f"group {changed} changed"
                    result.escalation = "group_changed"
                    result.escalated_group = changed
                else:
                    yield from self._user_pages(
                        change_filter, result, progress, memberships
                    )
                    result.watermark = new_mark
                    result.complete = True
            except DirectoryError as exc:
                result.errors.append(str(exc))
        if reason is not None:
            result.mode = "full"
            result.escalated = reason
            yield from self._full_pages(result, progress)

    def _changed_ad_groups(self, change_filter):
        """A mapped group, or a group nested in one, changed: memberships may have
        changed without
        touching the users (memberOf is a back-link, user uSNChanged does not move)."""
        cfg = self.config
        for group in cfg.group_dns:
            if not self._group_exists(group):
                continue
            chain = f"(memberOf:{MATCHING_RULE_IN_CHAIN}:={escape_filter_chars(group)})"
            for context in self.naming_contexts():
                itself = f"(distinguishedName={escape_filter_chars(group)})"
                flt = f"(&(objectClass=group){change_filter}(|{chain}{itself}))"
                rows = self._search_all(context, "subtree", flt, ["1.1"])
                if rows:
                    return rows[0][0]
        return None

    def _changed_ldap_groups(self, graph, since):
        for group in self.config.group_dns:
            key = normalize_dn(group)
            if key not in graph:
                continue
            _users, groups = self._closure(graph, key)
            for sub in sorted(groups):
                stamp = _parse_generalized(graph[sub][1])
                if stamp is None or stamp >= since:
                    return sub
        return None

    def lookup(self, anchor):
        """The entry with this anchor anywhere in the directory (ignores bases and
        filters), or None."""
        anchor = normalize_guid(anchor)
        flt = self._anchor_filter(anchor)
        for context in self.naming_contexts():
            rows = self._search_all(
                context, "subtree", flt, self.config.read_attributes()
            )
            if rows:
                return self._entry(*rows[0])
        return None

    def _anchor_filter(self, anchor):
        if self.config.kind == "ad":
            return f"(objectGUID={escape_bytes(guid_to_ad_bytes(anchor))})"
        return f"(entryUUID={escape_filter_chars(anchor)})"

    def in_scope(self, anchor):
        cfg = self.config
        flt = f"(&{cfg.search_filter}{self._anchor_filter(normalize_guid(anchor))})"
        for base in cfg.bases:
            try:
                if self._search_all(base.dn, base.scope, flt, ["1.1"]):
                    return True
            except DirectoryIncompleteError as exc:
                if "noSuchObject" in str(exc):
                    continue
                raise
        return False

    def confirm_departures(self, anchors):
        """Look every candidate up by GUID before anyone is archived (a move between OUs
        keeps the GUID)."""
        out = {}
        for anchor in anchors:
            key = normalize_guid(anchor)
            try:
                entry = self.lookup(key)
                if entry is None:
                    out[key] = "absent"
                elif entry.disabled:
                    out[key] = entry.disabled_reason or "disabled"
                elif self.in_scope(key):
                    out[key] = "present"
                else:
                    out[key] = "out_of_scope"
            except DirectoryError:
                out[key] = "error"
        return out


def _with_memberships(entry, memberships):
    if not memberships:
        return entry
    kind, by_key = memberships
    # a person's own DN is looked up once: keep it out of normalize_dn's cache
    key = entry.anchor if kind == "anchor" else normalize_dn.__wrapped__(entry.dn)
    groups = by_key.get(key)
    if not groups or groups <= entry.groups:
        return entry
    return DirectoryEntry(
        entry.anchor,
        entry.dn,
        entry.attributes,
        entry.groups | groups,
        entry.disabled,
        entry.disabled_reason,
    )


class PagedScan:
    """A directory read handed out one page of entries at a time (see
    :meth:`DirectoryReader.paged_scan`). Iterate it once; ``result`` is final when
    the iteration ends (``complete``, ``errors``, ``watermark``, ``count``…)."""

    def __init__(self, result, pages):
        self.result = result
        self._pages = pages

    def __iter__(self):
        return self._pages

    def collect(self):
        """Every entry into ``result.entries``: the whole read in memory."""
        for page in self._pages:
            for entry in page:
                self.result.entries[entry.anchor] = entry
        return self.result


def _decode(value):
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value).hex()
    return str(value)


def _short(exc):
    # ldap3 wraps socket/TLS errors in several layers of tuples; keep the human part.
    text = " ".join(str(exc).split())
    text = re.sub(r"""^[(\["',\s]+|[)\]"',\s]+$""", "", text).replace("\\'", "'")
    return text[:300]


def _quiet_close(conn):
    # Closing a connection that already failed: nothing useful to report.
    with contextlib.suppress(LDAPException, OSError):
        conn.unbind()
    sock = getattr(conn, "socket", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.close()
