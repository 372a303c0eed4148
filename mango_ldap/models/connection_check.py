"""The directory's "Test connection": what it found, and that outcome in words.

The outcome is kept as codes and parts (server, reason, counts), not as a
sentence: it is worded whenever it is shown, in the language of whoever reads it
(the form of an administrator in Finnish, the notification of one in Russian),
not in the language of whoever pressed the button. The reasons themselves
(``Connection refused``, ``invalidCredentials``) come from the network and the
directory server and stay as they are.
"""

from mango_office import directory as core

from ..sync import reader_config

# Outcomes that checked nothing: the settings lack what a check needs.
INCOMPLETE = {"no_server", "no_base"}


def check_connection(directory):
    """Connect, bind and count the entries the filters match, as the sync would.

    :return: the outcome, JSON-serialisable: ``ok``; on success ``server``,
        ``security``, ``tls``, ``bound_as``, ``count``; on failure ``failure`` and
        ``failures`` (one per server a failover tried, see
        ``mango_office.directory.DirectoryError.to_dict``); ``warnings`` as
        ``[code, server]`` pairs of ``mango_office.directory.WARNING_TEXTS``.
    :rtype: dict
    """
    d = directory.sudo()
    if not d.server_ids:
        return {"ok": False, "failure": {"kind": "no_server"}}
    if not d.base_dn_ids:
        return {"ok": False, "failure": {"kind": "no_base"}}
    try:
        config = reader_config(d)
    except ValueError as exc:
        # DirectoryConfig's own checks (a filter the form's constraint let by).
        return {"ok": False, "failure": {"kind": "settings", "reason": str(exc)}}
    with core.DirectoryReader(config) as reader:
        report = reader.test_connection()
    return {
        "ok": bool(report.ok),
        "server": report.server,
        "security": report.security,
        "tls": report.tls_version,
        "bound_as": report.bound_as,
        "bind_dn": config.bind_dn,
        "count": report.match_count,
        "failure": report.failure,
        "failures": report.failures,
        "warnings": [list(warning) for warning in report.warning_codes],
    }


def is_incomplete(outcome):
    return ((outcome or {}).get("failure") or {}).get("kind") in INCOMPLETE


def notification_type(outcome):
    """success: connected and people found; warning: connected with something to
    fix, or nothing checked yet; danger: no connection."""
    if is_incomplete(outcome):
        return "warning"
    if not outcome.get("ok"):
        return "danger"
    if not outcome.get("count") or outcome.get("warnings"):
        return "warning"
    return "success"


def describe(env, outcome):
    """The outcome in the language of ``env``, one sentence per line.

    :rtype: str
    """
    if not outcome:
        return ""
    _ = env._
    lines = []
    if outcome.get("ok"):
        lines.append(
            _(
                "Connected to %(server)s over %(transport)s and signed in as %(who)s.",
                server=outcome.get("server") or "",
                transport=_transport(env, outcome.get("security"), outcome.get("tls")),
                who=outcome.get("bound_as") or _("anonymous"),
            )
        )
        if outcome.get("count"):
            lines.append(
                _(
                    "Entries matching the search bases and filters: %(count)s.",
                    count=outcome["count"],
                )
            )
        else:
            lines.append(
                _(
                    "No entry matches the search bases and filters: check them on "
                    "the Entries tab."
                )
            )
    else:
        failures = outcome.get("failures") or [outcome.get("failure") or {}]
        lines.extend(_failure(env, failure, outcome) for failure in failures)
    lines.extend(
        _warning(env, code, server) for code, server in outcome.get("warnings") or ()
    )
    return "\n".join(lines)


def _transport(env, security, tls):
    _ = env._
    if security == "plain":
        return _("plain LDAP (unencrypted)")
    name = "StartTLS" if security == "starttls" else "LDAPS"
    return f"{name} ({tls})" if tls else name


def _failure(env, failure, outcome):
    _ = env._
    kind = failure.get("kind")
    server = failure.get("server") or _("the directory server")
    reason = failure.get("reason") or _("no reason given")
    if kind == "no_server":
        return _("Add at least one directory server on the Connection tab.")
    if kind == "no_base":
        return _("Add at least one search base on the Entries tab.")
    if kind == "settings":
        return _("The directory settings are not valid: %s", reason)
    if kind == "certificate":
        return _(
            "The certificate of %(server)s was refused (%(reason)s): paste the CA "
            "certificate that signed it, and use the host name the certificate was "
            "issued for.",
            server=server,
            reason=reason,
        )
    if kind == "connection":
        return _(
            "%(server)s cannot be reached (%(reason)s): check the host name, the port "
            "and the transport, and that Odoo's server may connect to it.",
            server=server,
            reason=reason,
        )
    if kind == "bind":
        return _(
            "%(server)s refused the sign-in as %(who)s (%(reason)s): check the bind "
            "DN and the password.",
            server=server,
            who=outcome.get("bind_dn") or _("anonymous"),
            reason=reason,
        )
    if kind == "search":
        base = failure.get("base") or ""
        if failure.get("result") == "noSuchObject":
            return _(
                "The search base %(base)s does not exist on %(server)s: check the "
                "search bases on the Entries tab.",
                base=base,
                server=server,
            )
        if failure.get("result") == "insufficientAccessRights":
            return _(
                "The service account may not read %(base)s on %(server)s: give it read "
                "access or use another account.",
                base=base,
                server=server,
            )
        return _(
            "Reading %(base)s on %(server)s failed (%(reason)s).",
            base=base,
            server=server,
            reason=reason,
        )
    return _("The connection test failed: %s", reason)


def _warning(env, code, server):
    _ = env._
    if code == "plain":
        return _(
            "Warning: %s uses plain LDAP, which sends the bind password and the "
            "directory unencrypted; use LDAPS or StartTLS.",
            server,
        )
    if code == "no_verify":
        return _(
            "Warning: the server certificate is not checked, so anyone on the network "
            "path can impersonate the directory."
        )
    if code == "no_hostname_check":
        return _(
            "Warning: the host name is not checked, so any certificate from the "
            "trusted CA is accepted."
        )
    if code == "anonymous":
        return _(
            "Warning: no bind DN, so the directory is read anonymously; most "
            "directories hide users and groups from anonymous reads."
        )
    return _("Warning: %s", code)
