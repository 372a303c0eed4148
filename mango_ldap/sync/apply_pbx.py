"""Apply a plan to the Mango PBX: users, extensions, access roles, SIP accounts.

Each operation is committed as soon as Mango accepted it (a PBX object exists
from then on, and a crash must not create it twice on the next run). A refusal
is recorded on the person's link and retried on the next run; a refusal for lack
of room stops the run's later PBX users, which would be refused alike.
"""

from mango_office.errors import MangoError, MangoResultError

# Mango result codes meaning "the tariff has no room": recorded, retried next run.
CAPACITY_CODES = {5221, 5228}
# Mango access role "no access" (reference §4.4): a disabled member keeps its
# extension reserved but can neither log in nor use the PBX.
NO_ACCESS_ROLE = "3"


class PbxApply:
    """Part of :class:`~.run.DirectorySync`: uses ``self.directory``,
    ``self.links``, ``self.pbx_client``, ``self.pbx_full`` and the journal."""

    def _client(self):
        if self.pbx_client is None:
            self.pbx_client = self.directory.account_id._mango_client()
        return self.pbx_client

    def _apply_pbx(self, ops):
        if not ops:
            return
        results = {}
        failed_keys = set()
        for op in ops:
            link = self.links.get(op.anchor)
            if op.after and op.after in failed_keys:
                failed_keys.add(op.key)
                self._line(
                    self._pbx_action(op),
                    "skipped",
                    op.anchor,
                    message=self._("Skipped: the PBX user could not be created."),
                )
                continue
            if not link:
                continue
            if op.op == "member_create" and self.pbx_full is not None:
                failed_keys.add(op.key)
                self._pbx_not_sent(op, link)
                self._step()
                continue
            try:
                self._pbx_op(op, link, results)
                self.counts["pbx"] += 1
            except MangoError as exc:
                failed_keys.add(op.key)
                self._pbx_failed(op, link, exc)
            except ValueError as exc:
                failed_keys.add(op.key)
                self._pbx_failed(op, link, exc)
            self._step()
            # A PBX object exists from here on: make the link durable now so a
            # crash cannot lead to a duplicate on the next run.
            self._flush_lines()
            self._commit()

    def _pbx_failed(self, op, link, exc):
        code = getattr(exc, "code", None)
        if isinstance(exc, MangoResultError) and code in CAPACITY_CODES:
            message = self._(
                "Mango refused (%(code)s, %(meaning)s): retried on the next run.",
                code=code,
                meaning=getattr(exc, "meaning", "") or exc,
            )
            if op.op == "member_create":
                self.pbx_full = exc
        else:
            message = self._("Mango refused: %s", exc)
        self._pbx_error(op, link, message)

    def _pbx_not_sent(self, op, link):
        exc = self.pbx_full
        self._pbx_error(
            op,
            link,
            self._(
                "Not sent: Mango refused an earlier PBX user of this run (%(code)s,"
                " %(meaning)s); retried on the next run.",
                code=exc.code,
                meaning=getattr(exc, "meaning", "") or exc,
            ),
        )

    def _pbx_error(self, op, link, message):
        """The person's PBX side failed: the next run tries again."""
        link.write({"pbx_state": "error", "pbx_error": message[:250]})
        self._error(self._pbx_action(op), op.anchor, message)

    def _pbx_op(self, op, link, results):
        client = self._client()
        payload = dict(op.payload or {})
        user_id = (
            op.pbx_user_id
            or link.pbx_user_id
            or (results.get(op.after) if op.after else None)
        )
        if op.op == "link":
            link.write(
                {
                    "pbx_user_id": str(op.pbx_user_id),
                    "pbx_state": "active",
                    "pbx_error": False,
                    "extension": payload.get("extension") or link.extension,
                }
            )
            if payload.get("sip_login"):
                link.sip_login = payload["sip_login"]
            results[op.key] = str(op.pbx_user_id)
            self._line(
                "pbx_link", "done", op.anchor, changes=self._pbx_payload_display(op)
            )
        elif op.op == "member_create":
            new_id = client.member_create(**payload)
            link.write(
                {
                    "pbx_user_id": str(new_id),
                    "pbx_state": "active",
                    "pbx_error": False,
                    "extension": payload.get("extension") or link.extension,
                    "pbx_role": str(payload.get("access_role_id") or "") or False,
                }
            )
            results[op.key] = str(new_id)
            self._line(
                "pbx_create", "done", op.anchor, changes=self._pbx_payload_display(op)
            )
        elif op.op == "member_update":
            client.member_update(user_id, **payload)
            vals = {"pbx_state": "active", "pbx_error": False}
            if "access_role_id" in payload:
                vals["pbx_role"] = str(payload["access_role_id"])
            if "extension" in payload:
                vals["extension"] = payload["extension"]
            link.write(vals)
            results[op.key] = user_id
            self._line(
                "pbx_update", "done", op.anchor, changes=self._pbx_payload_display(op)
            )
        elif op.op == "member_delete":
            self._pbx_delete(link, user_id)
            results[op.key] = user_id
        elif op.op == "sip_create":
            login = payload["login"]
            password = payload["password"]
            sip_id = client.sip_create(
                user_id,
                login,
                password,
                payload["domain"],
                description=payload.get("description"),
            )
            link.write(
                {
                    "sip_id": str(sip_id),
                    "sip_login": login,
                    # a re-enabled person's PBX user is usable again with its new SIP account
                    "pbx_state": "active",
                    "pbx_error": False,
                }
            )
            self.env["mango.ldap.sip.secret"].sudo().create(
                {
                    "run_id": self.run.id,
                    "link_id": link.id,
                    "user_name": link.name,
                    "sip_login": f"{login}@{payload['domain']}",
                    "password": password,
                }
            )
            results[op.key] = user_id
            self._line(
                "sip_create",
                "done",
                op.anchor,
                changes={"login": [None, f"{login}@{payload['domain']}"]},
            )

    def _pbx_delete(self, link, user_id=None):
        user_id = user_id or link.pbx_user_id
        try:
            self._client().member_delete(user_id)
        except MangoResultError as exc:
            # 3300: already gone on the PBX, which is the wanted end state.
            if getattr(exc, "code", None) != 3300:
                raise
        link.write(
            {
                "pbx_state": "deleted",
                "pbx_user_id": False,
                "sip_id": False,
                "sip_login": False,
            }
        )
        self._line("pbx_delete", "done", link.anchor)

    def _pbx_disable(self, link):
        """No access role and no numbers: the PBX user keeps the extension but can
        neither sign in nor receive calls, and its SIP accounts are removed."""
        try:
            self._client().member_update(
                link.pbx_user_id, access_role_id=NO_ACCESS_ROLE, numbers=[]
            )
        except (MangoError, ValueError) as exc:
            self._error("pbx_disable", link.anchor, self._("Mango refused: %s", exc))
            return
        link.write({"pbx_state": "disabled", "sip_id": False, "sip_login": False})
        self.counts["pbx"] += 1
        self._line("pbx_disable", "done", link.anchor)
