"""Errors that become HTTP answers: each carries its status and a short metrics reason."""

from __future__ import annotations

from gateway.contract_keys import WWW_AUTHENTICATE


class GatewayError(Exception):
    status = 500
    reason = "internal"
    headers: dict[str, str] = {}  # extra response headers; never mutated
    close_connection = False  # answer with Connection: close (after discarding the body)

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if reason is not None:
            self.reason = reason


class BadRequestError(GatewayError):
    status = 400
    reason = "bad_request"


class DownloadRefusedError(GatewayError):
    """URL not allowed (scheme, address, credentials) or the download failed upstream."""

    status = 400
    reason = "download_refused"


class PayloadTooLargeError(GatewayError):
    status = 413
    reason = "too_large"


class UnsupportedMediaTypeError(GatewayError):
    status = 415
    reason = "unsupported_media_type"


class InvalidImageError(GatewayError):
    status = 422
    reason = "invalid_image"


class RequestTimeoutError(GatewayError):
    status = 408
    reason = "upload_timeout"


class UpstreamTimeoutError(GatewayError):
    status = 504
    reason = "timeout"


class ModelUnavailableError(GatewayError):
    status = 503
    reason = "model_unavailable"


class ModelError(GatewayError):
    """TF Serving answered, but not usefully (wrong signature, shape, dtype...)."""

    status = 502
    reason = "model_error"


class OverloadedError(GatewayError):
    """Too many requests in flight on this replica: refused before reading the body."""

    status = 503
    reason = "overloaded"
    headers = {"Retry-After": "1"}
    # The retry then opens a new connection, which the Service may balance to another pod;
    # on this kept-alive one it would come back here.
    close_connection = True


class UnauthorizedError(GatewayError):
    """No API key, or not one of the configured keys (GATEWAY_API_KEYS_FILE)."""

    status = 401
    reason = "auth_invalid"
    headers = {"WWW-Authenticate": WWW_AUTHENTICATE}  # RFC 6750 section 3: the scheme to use
    # The body is never read: an unauthenticated client gets nothing more on this connection.
    close_connection = True
