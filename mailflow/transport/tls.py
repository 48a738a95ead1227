"""The TLS client context shared by the SMTP and IMAP transports."""

from __future__ import annotations

import ssl

from mailflow.config.settings import ServerConfig
from mailflow.errors import ConfigError


def make_ssl_context(cfg: ServerConfig) -> ssl.SSLContext:
    """A verifying client context: system CAs plus cfg.ca_file, host-name check on."""
    # create_default_context() turns on CERT_REQUIRED and check_hostname (RFC 6125 matching);
    # we never switch them off: a private CA goes in ca_file instead.
    ctx = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
    # RFC 8996 deprecates TLS 1.0 and 1.1.
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cfg.ca_file:
        try:
            ctx.load_verify_locations(cafile=cfg.ca_file)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"{cfg.address}: cannot load ca_file {cfg.ca_file!r}: "
                              f"{getattr(err, 'strerror', None) or err}") from None
    return ctx


def describe_ssl_error(err: ssl.SSLError) -> str:
    """One line for a TLS failure, e.g. 'TLS certificate verify failed: Hostname mismatch...'."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS certificate verify failed: {err.verify_message or err.reason}"
    return f"TLS handshake failed: {err.reason or err}"
