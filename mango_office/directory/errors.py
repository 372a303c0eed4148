"""What can go wrong talking to a directory, and what a caller needs to say so.

Messages never contain the bind password; each error also carries its parts
(server, reason, base, LDAP result) for a caller that words it in its reader's
language.
"""


class DirectoryError(Exception):
    """Base of every directory failure; messages never contain the bind password.

    Besides the English message, the parts a caller needs to word the failure
    itself (in its reader's language): ``server`` (URI), ``reason`` (the cause in a
    few words), ``base`` and ``result`` (LDAP result name) for a search, and
    ``failures``, the error of each server a failover tried."""

    kind = "error"

    def __init__(
        self, message, *, server=None, reason=None, base=None, result=None, failures=()
    ):
        super().__init__(message)
        self.server = server
        self.reason = reason
        self.base = base
        self.result = result
        self.failures = tuple(failures)

    def to_dict(self):
        return {
            "kind": self.kind,
            "server": self.server,
            "reason": self.reason,
            "base": self.base,
            "result": self.result,
        }


class DirectoryConnectionError(DirectoryError):
    kind = "connection"


class DirectoryCertificateError(DirectoryConnectionError):
    kind = "certificate"


class DirectoryBindError(DirectoryError):
    kind = "bind"


class DirectorySearchError(DirectoryError):
    kind = "search"


class DirectoryIncompleteError(DirectorySearchError):
    """A search ended early (size/time/admin limit, missing paging cookie, lost
    connection)."""
