"""TLS to a directory server, verified: the chain and the host name, by OpenSSL.

ldap3's own ``Tls()`` verifies nothing by default; every connection to a
directory goes through :class:`_VerifyingTls` instead.
"""

import ssl

import ldap3


class _VerifyingTls(ldap3.Tls):
    """TLS through a standard-library context: chain *and* host name verified by OpenSSL.

    ldap3's own check uses ``ssl.match_hostname`` (gone in Python 3.12) and only when it
    does the handshake itself; the context below checks on every path (LDAPS and
    StartTLS).
    """

    def __init__(self, ca_pem=None, ca_file=None, verify=True, check_hostname=True):
        super().__init__(validate=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE)
        self._ca_pem = ca_pem
        self._ca_file = ca_file
        self._verify = verify
        self._check_hostname = verify and check_hostname

    def _context(self):
        if self._verify:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cafile=self._ca_file, cadata=self._ca_pem
            )
            context.check_hostname = self._check_hostname
            context.verify_mode = ssl.CERT_REQUIRED
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def wrap_socket(self, connection, do_handshake=False):
        connection.socket = self._context().wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=True,
            server_hostname=connection.server.host,
        )


def _is_certificate_problem(exc):
    text = str(exc).lower()
    return any(
        marker in text
        for marker in (
            "certificate verify failed",
            "certificate_verify_failed",
            "hostname mismatch",
            "doesn't match",
            "ip address mismatch",
        )
    )
