"""The ``ERR_*`` error codes: one stable identifier per failure mode.

Each code carries what a caller, a dashboard and an on-call engineer need:

- ``message``: a one-line description of the failure;
- ``category``: a coarse, low-cardinality grouping (used as ``pixel_llm.error.category``);
- ``severity``: how bad it is for the caller;
- ``retryable``: whether retrying the same request may succeed (the default; the classifier may
  override it per occurrence, e.g. an HTTP 409);
- ``trips_breaker``: whether the failure says something about the health of the LLM server and
  therefore counts as a circuit-breaker failure (a caller bug, such as a bad tensor, does not);
- ``suggestion``: what the user should do about it.

Codes are strings (``ErrorCode.TIMEOUT_READ == "ERR_TIMEOUT_READ"``) so they serialise as is in logs
and telemetry. Never rename one: dashboards, alerts and users' ``except`` logic depend on them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CODE_INFO", "ErrorCategory", "ErrorCode", "ErrorCodeInfo", "ErrorSeverity", "info"]


class ErrorCategory(str, enum.Enum):
    """Coarse grouping of error codes; a low-cardinality metric label."""

    CONNECTION = "connection"  # the server could not be reached or dropped the connection
    TIMEOUT = "timeout"  # the server was reached but did not answer in time
    RATE_LIMIT = "rate_limit"  # the server asked us to slow down (429)
    SERVER = "server"  # the server failed (5xx)
    CLIENT = "client"  # the server rejected the request as ours to fix (4xx)
    AUTHENTICATION = "authentication"  # missing or invalid credentials (401/403)
    RESPONSE = "response"  # the server answered with something we cannot use
    VALIDATION = "validation"  # the caller passed bad input or configuration
    ENCODER = "encoder"  # the local torch vision encoder failed
    CIRCUIT_BREAKER = "circuit_breaker"  # the call was refused by an open breaker
    RETRY = "retry"  # every attempt failed
    LIFECYCLE = "lifecycle"  # the client or pipeline was closed before or during the call
    UNKNOWN = "unknown"  # anything we could not classify

    def __str__(self) -> str:
        return self.value


class ErrorSeverity(str, enum.Enum):
    """How bad an error is for the caller; maps onto logging levels."""

    LOW = "low"  # expected and absorbed (e.g. one retried timeout)
    MEDIUM = "medium"  # degraded service for this call
    HIGH = "high"  # the call failed
    CRITICAL = "critical"  # the process cannot serve anything until someone acts

    def __str__(self) -> str:
        return self.value


class ErrorCode(str, enum.Enum):
    """Every failure mode the package reports. See ``docs/error-handling-guide.md``."""

    # connection
    CONNECTION_REFUSED = "ERR_CONNECTION_REFUSED"
    CONNECTION_DNS = "ERR_CONNECTION_DNS"
    CONNECTION_RESET = "ERR_CONNECTION_RESET"
    CONNECTION_SSL = "ERR_CONNECTION_SSL"
    # timeouts
    TIMEOUT_CONNECT = "ERR_TIMEOUT_CONNECT"
    TIMEOUT_READ = "ERR_TIMEOUT_READ"
    TIMEOUT_TOTAL = "ERR_TIMEOUT_TOTAL"
    # HTTP
    HTTP_BAD_REQUEST = "ERR_HTTP_BAD_REQUEST"
    HTTP_NOT_FOUND = "ERR_HTTP_NOT_FOUND"
    HTTP_CLIENT_ERROR = "ERR_HTTP_CLIENT_ERROR"
    HTTP_TRANSIENT_CLIENT_ERROR = "ERR_HTTP_TRANSIENT_CLIENT_ERROR"
    RATE_LIMITED = "ERR_RATE_LIMITED"
    HTTP_SERVER_ERROR = "ERR_HTTP_SERVER_ERROR"
    HTTP_UNAVAILABLE = "ERR_HTTP_UNAVAILABLE"
    API_KEY_INVALID = "ERR_API_KEY_INVALID"
    # response body
    RESPONSE_MALFORMED = "ERR_RESPONSE_MALFORMED"
    RESPONSE_INVALID = "ERR_RESPONSE_INVALID"
    RESPONSE_TOO_LARGE = "ERR_RESPONSE_TOO_LARGE"
    STREAM_INTERRUPTED = "ERR_STREAM_INTERRUPTED"
    # validation
    VALIDATION_TYPE = "ERR_VALIDATION_TYPE"
    VALIDATION_SHAPE = "ERR_VALIDATION_SHAPE"
    VALIDATION_DTYPE = "ERR_VALIDATION_DTYPE"
    VALIDATION_RANGE = "ERR_VALIDATION_RANGE"
    VALIDATION_NONFINITE = "ERR_VALIDATION_NONFINITE"
    VALIDATION_DEVICE = "ERR_VALIDATION_DEVICE"
    VALIDATION_PROMPT = "ERR_VALIDATION_PROMPT"
    VALIDATION_CONFIG = "ERR_VALIDATION_CONFIG"
    # encoder
    ENCODER_OOM = "ERR_ENCODER_OOM"
    ENCODER_RUNTIME = "ERR_ENCODER_RUNTIME"
    ENCODER_CHECKPOINT = "ERR_ENCODER_CHECKPOINT"
    ENCODER_DEVICE = "ERR_ENCODER_DEVICE"
    # resilience
    CIRCUIT_OPEN = "ERR_CIRCUIT_OPEN"
    RETRY_EXHAUSTED = "ERR_RETRY_EXHAUSTED"
    # lifecycle
    CLIENT_CLOSED = "ERR_CLIENT_CLOSED"
    # anything else
    UNKNOWN = "ERR_UNKNOWN"

    def __str__(self) -> str:
        return self.value

    @property
    def info(self) -> ErrorCodeInfo:
        """The metadata of this code."""
        return CODE_INFO[self]


@dataclass(frozen=True, slots=True)
class ErrorCodeInfo:
    """Metadata of one error code."""

    code: ErrorCode
    message: str
    category: ErrorCategory
    severity: ErrorSeverity
    retryable: bool
    trips_breaker: bool
    suggestion: str


_C = ErrorCategory
_S = ErrorSeverity


def _i(
    code: ErrorCode,
    message: str,
    category: ErrorCategory,
    severity: ErrorSeverity,
    *,
    retryable: bool,
    trips_breaker: bool,
    suggestion: str,
) -> tuple[ErrorCode, ErrorCodeInfo]:
    return code, ErrorCodeInfo(
        code, message, category, severity, retryable, trips_breaker, suggestion
    )


CODE_INFO: dict[ErrorCode, ErrorCodeInfo] = dict(
    [
        _i(
            ErrorCode.CONNECTION_REFUSED,
            "The LLM server refused the connection: nothing is listening at the URL.",
            _C.CONNECTION,
            _S.HIGH,
            retryable=True,
            trips_breaker=True,
            suggestion="Start LM Studio (or your OpenAI-compatible server) and load a model, or "
            "fix lm_studio_url (default http://localhost:1234/v1).",
        ),
        _i(
            ErrorCode.CONNECTION_DNS,
            "The LLM server's host name could not be resolved.",
            _C.CONNECTION,
            _S.HIGH,
            retryable=True,
            trips_breaker=True,
            suggestion="Check the host name in lm_studio_url and the machine's DNS settings.",
        ),
        _i(
            ErrorCode.CONNECTION_RESET,
            "The connection to the LLM server was closed or reset before a full response arrived.",
            _C.CONNECTION,
            _S.MEDIUM,
            retryable=True,
            trips_breaker=True,
            suggestion="Usually transient and retried automatically; if it persists, check the "
            "server's logs and any proxy between you and it.",
        ),
        _i(
            ErrorCode.CONNECTION_SSL,
            "The TLS handshake with the LLM server failed.",
            _C.CONNECTION,
            _S.HIGH,
            retryable=False,
            trips_breaker=True,
            suggestion="Check the URL scheme (http vs https) and the server's certificate.",
        ),
        _i(
            ErrorCode.TIMEOUT_CONNECT,
            "Connecting to the LLM server timed out.",
            _C.TIMEOUT,
            _S.MEDIUM,
            retryable=True,
            trips_breaker=True,
            suggestion="Check that the server is up and reachable; raise connect_timeout for "
            "slow networks.",
        ),
        _i(
            ErrorCode.TIMEOUT_READ,
            "The LLM server accepted the request but did not send data in time.",
            _C.TIMEOUT,
            _S.MEDIUM,
            retryable=True,
            trips_breaker=True,
            suggestion="The model may be loading or overloaded: raise read_timeout, lower "
            "max_tokens, or use a smaller model.",
        ),
        _i(
            ErrorCode.TIMEOUT_TOTAL,
            "The whole request to the LLM server exceeded its time budget.",
            _C.TIMEOUT,
            _S.MEDIUM,
            retryable=True,
            trips_breaker=True,
            suggestion="Raise total_timeout or the retry deadline, or lower max_tokens.",
        ),
        _i(
            ErrorCode.HTTP_BAD_REQUEST,
            "The LLM server rejected the request as invalid (HTTP 400).",
            _C.CLIENT,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Read the server's error message in the exception; check the model name, "
            "max_tokens and the prompt size against the model's context length.",
        ),
        _i(
            ErrorCode.HTTP_NOT_FOUND,
            "The LLM server has no such endpoint or model (HTTP 404).",
            _C.CLIENT,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Check that lm_studio_url ends in /v1 and that lm_studio_model names a "
            "loaded model (GET /v1/models lists them).",
        ),
        _i(
            ErrorCode.HTTP_CLIENT_ERROR,
            "The LLM server rejected the request (HTTP 4xx).",
            _C.CLIENT,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Read the server's error message in the exception and fix the request.",
        ),
        _i(
            ErrorCode.HTTP_TRANSIENT_CLIENT_ERROR,
            "The LLM server asked for the request to be repeated (HTTP 408, 409 or 425).",
            _C.CLIENT,
            _S.LOW,
            retryable=True,
            trips_breaker=False,
            suggestion="Retried automatically; if it persists, the server is contended.",
        ),
        _i(
            ErrorCode.RATE_LIMITED,
            "The LLM server is rate limiting requests (HTTP 429).",
            _C.RATE_LIMIT,
            _S.MEDIUM,
            retryable=True,
            trips_breaker=True,
            suggestion="Retried after the server's Retry-After; lower the request rate or the "
            "batch concurrency, or raise your quota.",
        ),
        _i(
            ErrorCode.HTTP_SERVER_ERROR,
            "The LLM server failed while handling the request (HTTP 500 or other 5xx).",
            _C.SERVER,
            _S.MEDIUM,
            retryable=True,
            trips_breaker=True,
            suggestion="Retried automatically; if it persists, check the server's logs (a model "
            "crash or out of memory is common).",
        ),
        _i(
            ErrorCode.HTTP_UNAVAILABLE,
            "The LLM server or a gateway in front of it is unavailable (HTTP 502, 503 or 504).",
            _C.SERVER,
            _S.MEDIUM,
            retryable=True,
            trips_breaker=True,
            suggestion="Retried automatically; the server may be restarting or loading a model.",
        ),
        _i(
            ErrorCode.API_KEY_INVALID,
            "The LLM server rejected the credentials (HTTP 401 or 403).",
            _C.AUTHENTICATION,
            _S.CRITICAL,
            retryable=False,
            trips_breaker=False,
            suggestion="Set a valid api_key (sent as a Bearer token) or remove it for servers "
            "that need none.",
        ),
        _i(
            ErrorCode.RESPONSE_MALFORMED,
            "The LLM server's response is not valid HTTP or its body is not valid JSON.",
            _C.RESPONSE,
            _S.MEDIUM,
            retryable=True,
            trips_breaker=True,
            suggestion="Check that the URL points at an OpenAI-compatible API and not at a proxy "
            "or web page.",
        ),
        _i(
            ErrorCode.RESPONSE_INVALID,
            "The LLM server's response is JSON but not a usable chat completion (e.g. no choices).",
            _C.RESPONSE,
            _S.MEDIUM,
            retryable=True,
            trips_breaker=True,
            suggestion="Check the server and model: some return empty choices when the context "
            "overflows or the model is unloaded.",
        ),
        _i(
            ErrorCode.RESPONSE_TOO_LARGE,
            "The LLM server's response body exceeded max_response_bytes (counted after "
            "decompression); reading stopped there.",
            _C.RESPONSE,
            _S.HIGH,
            retryable=False,
            trips_breaker=True,
            suggestion="Check that the URL points at an OpenAI-compatible API (not a file server "
            "or a proxy error page) and lower max_tokens; raise max_response_bytes only if the "
            "server legitimately answers with more.",
        ),
        _i(
            ErrorCode.STREAM_INTERRUPTED,
            "A streamed answer failed after its first content chunk (reset, stall past the "
            "idle timeout, malformed event, deadline); the text already delivered stands.",
            _C.RESPONSE,
            _S.HIGH,
            retryable=False,
            trips_breaker=True,
            suggestion="Not retried automatically: the chunks already yielded cannot be taken "
            "back. Keep or discard the partial text and call again (the cause is chained).",
        ),
        _i(
            ErrorCode.VALIDATION_TYPE,
            "An argument has the wrong type.",
            _C.VALIDATION,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Pass the type named in the error message.",
        ),
        _i(
            ErrorCode.VALIDATION_SHAPE,
            "A tensor has the wrong shape.",
            _C.VALIDATION,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Pass images as CHW or BCHW float tensors with 3 channels at the expected "
            "size.",
        ),
        _i(
            ErrorCode.VALIDATION_DTYPE,
            "A tensor has the wrong dtype.",
            _C.VALIDATION,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Convert the tensor, e.g. tensor.float() / 255 for uint8 images.",
        ),
        _i(
            ErrorCode.VALIDATION_RANGE,
            "A value is outside its allowed range.",
            _C.VALIDATION,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Bring the value into the range named in the error message (images: 0..1).",
        ),
        _i(
            ErrorCode.VALIDATION_NONFINITE,
            "A tensor contains NaN or infinite values.",
            _C.VALIDATION,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Fix the preprocessing that produced NaN/inf (division by zero is common).",
        ),
        _i(
            ErrorCode.VALIDATION_DEVICE,
            "A tensor or device setting names a device that is not allowed or not available.",
            _C.VALIDATION,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Use device='auto', 'cpu', 'cuda', 'cuda:N' or 'mps', and only one that "
            "this machine has.",
        ),
        _i(
            ErrorCode.VALIDATION_PROMPT,
            "The prompt text is not acceptable (wrong type, control characters or too long).",
            _C.VALIDATION,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Pass a str within the configured max_prompt_chars.",
        ),
        _i(
            ErrorCode.VALIDATION_CONFIG,
            "A configuration value is unknown, of the wrong type or out of range.",
            _C.VALIDATION,
            _S.CRITICAL,
            retryable=False,
            trips_breaker=False,
            suggestion="Fix the configuration field named in the error message.",
        ),
        _i(
            ErrorCode.ENCODER_OOM,
            "The vision encoder ran out of memory.",
            _C.ENCODER,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Use smaller batches or images, or device='cpu'.",
        ),
        _i(
            ErrorCode.ENCODER_RUNTIME,
            "The vision encoder failed while running.",
            _C.ENCODER,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Check the image tensor and the encoder_config; the chained exception has "
            "torch's message.",
        ),
        _i(
            ErrorCode.ENCODER_CHECKPOINT,
            "The vision encoder's checkpoint could not be loaded.",
            _C.ENCODER,
            _S.CRITICAL,
            retryable=False,
            trips_breaker=False,
            suggestion="Check the checkpoint path and that it matches the encoder_config "
            "(dims, layers, heads, patch size).",
        ),
        _i(
            ErrorCode.ENCODER_DEVICE,
            "The requested torch device is not available.",
            _C.ENCODER,
            _S.CRITICAL,
            retryable=False,
            trips_breaker=False,
            suggestion="Use device='auto' or 'cpu', or install a torch build for your GPU.",
        ),
        _i(
            ErrorCode.CIRCUIT_OPEN,
            "The circuit breaker is open: calls to the LLM server are refused for now.",
            _C.CIRCUIT_BREAKER,
            _S.MEDIUM,
            retryable=False,
            trips_breaker=False,
            suggestion="The server failed repeatedly; calls resume after the cooldown. Fix the "
            "server (see the breaker's last failure) or wait.",
        ),
        _i(
            ErrorCode.RETRY_EXHAUSTED,
            "Every attempt failed; the last error is chained.",
            _C.RETRY,
            _S.HIGH,
            retryable=False,
            trips_breaker=True,
            suggestion="See the last error's code and suggestion; raise max_attempts or the "
            "deadline only if the failures are transient.",
        ),
        _i(
            ErrorCode.CLIENT_CLOSED,
            "The client or pipeline was closed before or while the call ran.",
            _C.LIFECYCLE,
            _S.HIGH,
            retryable=False,
            trips_breaker=False,
            suggestion="Do not use an instance after close()/aclose(), and close it only once "
            "every call has returned; build a new one to continue.",
        ),
        _i(
            ErrorCode.UNKNOWN,
            "An unexpected error.",
            _C.UNKNOWN,
            _S.HIGH,
            retryable=False,
            trips_breaker=True,
            suggestion="Read the chained exception; please report it if it comes from this "
            "package.",
        ),
    ]
)


def info(code: ErrorCode | str) -> ErrorCodeInfo:
    """The metadata of ``code`` (an :class:`ErrorCode` or its ``ERR_*`` string)."""
    return CODE_INFO[ErrorCode(code)]
