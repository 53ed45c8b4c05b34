"""The manager's errors as Python exceptions.

The manager answers a failed request with ``{"error": {"code", "message", "field"}}``; the
client raises the subclass of :class:`DroverError` for that code, carrying the message and
the input field at fault (dotted, e.g. ``pluginInfo.width``) when there is one.
"""

__all__ = [
    "DroverError",
    "InvalidInput",
    "NotFound",
    "Conflict",
    "LeaseLost",
    "Unauthorized",
    "Forbidden",
    "TooLarge",
    "Unavailable",
    "InsufficientStorage",
    "error_for",
]


class DroverError(Exception):
    """Any error the manager reported, or ``unavailable`` when it could not be reached."""

    code = "unavailable"

    def __init__(self, message, code=None, field=None, status=None):
        super(DroverError, self).__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.field = field
        self.status = status

    def __str__(self):
        return self.message


class InvalidInput(DroverError):
    code = "invalid_input"


class NotFound(DroverError):
    code = "not_found"


class Conflict(DroverError):
    code = "conflict"


class LeaseLost(DroverError):
    code = "lease_lost"


class Unauthorized(DroverError):
    code = "unauthorized"


class Forbidden(DroverError):
    code = "forbidden"


class TooLarge(DroverError):
    code = "too_large"


class Unavailable(DroverError):
    code = "unavailable"


class InsufficientStorage(DroverError):
    code = "insufficient_storage"


_BY_CODE = dict(
    (cls.code, cls)
    for cls in (
        InvalidInput,
        NotFound,
        Conflict,
        LeaseLost,
        Unauthorized,
        Forbidden,
        TooLarge,
        Unavailable,
        InsufficientStorage,
    )
)

# For replies without a JSON error body (a proxy's 502), as the TypeScript client does.
_CODE_BY_STATUS = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    507: "insufficient_storage",
}


def error_for(status, body, what):
    """The exception for an HTTP error reply (``body`` already parsed, or None)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("code") in _BY_CODE:
        message = error.get("message")
        if not isinstance(message, str):
            message = "%s failed (%d)" % (what, status)
        field = error.get("field") if isinstance(error.get("field"), str) else None
        return _BY_CODE[error["code"]](message, field=field, status=status)
    code = _CODE_BY_STATUS.get(status, "unavailable")
    return _BY_CODE[code](
        "%s failed: the manager answered %d" % (what, status), status=status
    )
