"""What the planner remembers across the pages of one run, behind one interface.

A page is planned against everything decided before it: the logins, extensions and
SIP logins already taken (by Odoo, the PBX, people linked earlier, people planned on
earlier pages), which PBX user belongs to whom, which extension a claim was settled
for, and which people were already planned. These registries grow with the size of
the directory, so a sync of 100,000 people keeps them in the database
(``mango_ldap/sync/registries.py``) and only a page of them in memory; the planner
itself only speaks this interface, and :class:`MemoryRegistries` keeps them in
dictionaries for the pure tests and :func:`~.planner.build_plan`.

The registries are five kinds of keys. Extensions map to a *set* of owners (two
people may hold one number: that is a conflict to report, not to lose); logins, PBX
user ids and settled extensions map to *one* owner; SIP logins and the anchors seen
are plain sets. Owner keys are the planner's: ``anchor:<guid>``, ``odoo:<id>``,
``pbx:<id>``, ``reserved:<label>``.

Implementations only provide the primitives (``_value``, ``_put``, ``_put_default``,
``_drop``, ``_owners``, ``_add_owner``) and may batch them: :meth:`prefetch` says which
keys a page is about to ask for, :meth:`page_done` that the page is over.
"""

# kinds of keys, one letter each (the database stores them)
EXTENSION = "e"  # extension -> owners
LOGIN = "l"  # lower-case login -> owner
PBX_USER = "p"  # PBX user id -> anchor of the person linked to it
SETTLED = "c"  # extension -> anchor a claim was settled for
SIP = "s"  # lower-case SIP login local part (set)
SEEN = "a"  # anchor planned this run (set)

_PRESENT = ""  # the value of a set member


class Registries:
    """The planner's cross-page memory. Subclasses implement the primitives."""

    # -- extensions --------------------------------------------------------------------

    def extension_owners(self, extension):
        """The owner keys holding ``extension`` (an empty set when nobody does)."""
        return self._owners(EXTENSION, str(extension))

    def add_extension_owner(self, extension, owner):
        self._add_owner(EXTENSION, str(extension), owner)

    # -- logins (lower case) -----------------------------------------------------------

    def login_owner(self, login):
        return self._value(LOGIN, login)

    def set_login_owner(self, login, owner):
        self._put(LOGIN, login, owner)

    def default_login_owner(self, login, owner):
        """Give ``login`` to ``owner`` unless somebody has it already."""
        self._put_default(LOGIN, login, owner)

    def forget_login(self, login):
        self._drop(LOGIN, login)

    # -- PBX users linked to people ----------------------------------------------------

    def pbx_anchor(self, pbx_user_id):
        """The anchor of the person this PBX user is linked to, or None."""
        return self._value(PBX_USER, str(pbx_user_id))

    def link_pbx(self, pbx_user_id, anchor):
        self._put(PBX_USER, str(pbx_user_id), anchor)

    # -- SIP logins (lower-case local part) --------------------------------------------

    def sip_taken(self, local):
        return self._value(SIP, local) is not None

    def take_sip(self, local):
        self._put(SIP, local, _PRESENT)

    def sip_view(self):
        """The taken SIP logins as :func:`~.credentials.sip_login_for` asks them."""
        return _SipLookup(self)

    # -- extensions settled by the claims ----------------------------------------------

    def settled_anchor(self, extension):
        return self._value(SETTLED, str(extension))

    def settle(self, extension, anchor):
        self._put(SETTLED, str(extension), anchor)

    # -- anchors planned this run ------------------------------------------------------

    def see(self, anchor):
        """Mark ``anchor`` planned; False when it was already (overlapping bases)."""
        if self._value(SEEN, anchor) is not None:
            return False
        self._put(SEEN, anchor, _PRESENT)
        return True

    def was_seen(self, anchor):
        return self._value(SEEN, anchor) is not None

    def seen_count(self):
        raise NotImplementedError

    # -- paging ------------------------------------------------------------------------

    def prefetch(self, kind, keys):
        """The keys of ``kind`` a page is about to ask for: an implementation may
        read them at once. Nothing to do in memory."""

    def page_done(self):
        """A page (or the registration of the linked records) is over: an
        implementation may write what it holds and forget it."""

    # -- primitives --------------------------------------------------------------------

    def _value(self, kind, key):
        """The one value of a single-valued key, or None."""
        raise NotImplementedError

    def _put(self, kind, key, value):
        raise NotImplementedError

    def _put_default(self, kind, key, value):
        raise NotImplementedError

    def _drop(self, kind, key):
        raise NotImplementedError

    def _owners(self, kind, key):
        """The set of values of a multi-valued key (a copy: the caller may change it)."""
        raise NotImplementedError

    def _add_owner(self, kind, key, owner):
        raise NotImplementedError


class _SipLookup:
    """``local in taken`` over the registries; marks the values as normalised."""

    normalised = True

    def __init__(self, registries):
        self._registries = registries

    def __contains__(self, local):
        return self._registries.sip_taken(local)


class MemoryRegistries(Registries):
    """The registries in dictionaries: pure tests and one-shot plans.

    An extension held by one owner is stored as the owner's string, not a set of one:
    a registry of 10,000 numbers is then 10,000 strings the plan holds anyway."""

    def __init__(self):
        self._single = {LOGIN: {}, PBX_USER: {}, SETTLED: {}, SIP: {}, SEEN: {}}
        self._multi = {}

    def seen_count(self):
        return len(self._single[SEEN])

    def seen_anchors(self):
        return set(self._single[SEEN])

    def _value(self, kind, key):
        return self._single[kind].get(key)

    def _put(self, kind, key, value):
        self._single[kind][key] = value

    def _put_default(self, kind, key, value):
        self._single[kind].setdefault(key, value)

    def _drop(self, kind, key):
        self._single[kind].pop(key, None)

    def _owners(self, kind, key):
        current = self._multi.get(key)
        if current is None:
            return set()
        return {current} if isinstance(current, str) else set(current)

    def _add_owner(self, kind, key, owner):
        current = self._multi.get(key)
        if current is None:
            self._multi[key] = owner
        elif isinstance(current, str):
            if current != owner:
                self._multi[key] = {current, owner}
        else:
            current.add(owner)
