"""Every telemetry name the package emits: the one place they live.

The names are fixed by ``docs/telemetry-contract.md`` (GenAI semantic conventions plus our own
``pixel_llm.*`` names). Dashboards, alert rules and users' queries depend on them: rename only with
the contract. Semconv names are spelled out rather than imported so that a semconv release that
moves or deprecates a constant cannot change what we emit; a test checks each one still exists in
the ``opentelemetry-semantic-conventions`` package.
"""

from __future__ import annotations

from typing import Final

# --- instrumentation scope ------------------------------------------------------------------
SCOPE_NAME: Final = "pixel_llm_otel"

# --- spans ------------------------------------------------------------------------------------
SPAN_GENERATE: Final = "pixel_llm.generate"
SPAN_GENERATE_BATCH: Final = "pixel_llm.generate_batch"
SPAN_ENCODE: Final = "pixel_llm.encode"
SPAN_CHAT_PREFIX: Final = "chat"  # the span is named "chat {model}"

# --- span events ------------------------------------------------------------------------------
EVENT_RETRY: Final = "pixel_llm.retry"
EVENT_BREAKER_STATE_CHANGE: Final = "pixel_llm.circuit_breaker.state_change"
EVENT_BREAKER_REJECTED: Final = "pixel_llm.circuit_breaker.rejected"
EVENT_FALLBACK: Final = "pixel_llm.fallback"

# --- GenAI events (log records with an event name) ---------------------------------------------
EVENT_OPERATION_DETAILS: Final = "gen_ai.client.inference.operation.details"
EVENT_OPERATION_EXCEPTION: Final = "gen_ai.client.operation.exception"  # coming names only

# --- semconv attributes (checked against the semconv package by a test) ---------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
URL_FULL: Final = "url.full"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
HTTP_REQUEST_RESEND_COUNT: Final = "http.request.resend_count"

# --- names of the conventions' next release, not yet in the semconv package: each is spelled
# as opentelemetry-util-genai (the reference implementation) spells it; a test checks them there.
GEN_AI_USAGE_IMAGE_INPUT_TOKENS: Final = "gen_ai.usage.image.input_tokens"
GEN_AI_INPUT_MESSAGES_REF: Final = "gen_ai.input.messages_ref"
GEN_AI_OUTPUT_MESSAGES_REF: Final = "gen_ai.output.messages_ref"
GEN_AI_SYSTEM_INSTRUCTIONS_REF: Final = "gen_ai.system_instructions_ref"

OPERATION_CHAT: Final = "chat"
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"

# --- our attributes ---------------------------------------------------------------------------
OUTCOME: Final = "pixel_llm.outcome"
ATTEMPTS: Final = "pixel_llm.attempts"
BATCH_SIZE: Final = "pixel_llm.batch.size"
FALLBACK_STRATEGY: Final = "pixel_llm.fallback.strategy"
FALLBACK_RESULT: Final = "pixel_llm.fallback.result"
ENCODER_TYPE: Final = "pixel_llm.encoder.type"
ENCODER_DEVICE: Final = "pixel_llm.encoder.device"
ERROR_CODE: Final = "pixel_llm.error.code"
ERROR_CATEGORY: Final = "pixel_llm.error.category"
RETRY_ATTEMPT: Final = "pixel_llm.retry.attempt"
RETRY_DELAY_S: Final = "pixel_llm.retry.delay_s"
BREAKER_NAME: Final = "pixel_llm.circuit_breaker.name"
BREAKER_FROM_STATE: Final = "pixel_llm.circuit_breaker.from_state"
BREAKER_TO_STATE: Final = "pixel_llm.circuit_breaker.to_state"
BREAKER_REASON: Final = "pixel_llm.circuit_breaker.reason"
BREAKER_STATE: Final = "pixel_llm.circuit_breaker.state"
TELEMETRY_SIGNAL: Final = "pixel_llm.telemetry.signal"
#: Its values per the contract name the dropped items (the SDK calls the span signal "traces").
SIGNAL_ITEMS: Final = {"traces": "spans", "logs": "logs"}
STREAM_END: Final = (
    "pixel_llm.stream.end"  # completed | closed | cancelled | interrupted | abandoned
)

OUTCOME_SUCCESS: Final = "success"
OUTCOME_FALLBACK: Final = "fallback"
OUTCOME_ERROR: Final = "error"
BREAKER_STATES: Final = ("closed", "open", "half_open")

# --- metrics ----------------------------------------------------------------------------------
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
METRIC_GENERATE_REQUESTS: Final = "pixel_llm.generate.requests"
METRIC_GENERATE_DURATION: Final = "pixel_llm.generate.duration"
METRIC_RETRY_ATTEMPTS: Final = "pixel_llm.retry.attempts"
METRIC_RETRY_EXHAUSTED: Final = "pixel_llm.retry.exhausted"
METRIC_BREAKER_TRANSITIONS: Final = "pixel_llm.circuit_breaker.transitions"
METRIC_BREAKER_STATE: Final = "pixel_llm.circuit_breaker.state"
METRIC_BREAKER_REJECTED: Final = "pixel_llm.circuit_breaker.rejected"
METRIC_FALLBACK_INVOCATIONS: Final = "pixel_llm.fallback.invocations"
METRIC_ERRORS: Final = "pixel_llm.errors"
METRIC_ENCODER_DURATION: Final = "pixel_llm.encoder.duration"
METRIC_TELEMETRY_DROPPED: Final = "pixel_llm.telemetry.dropped"
# the coming inference names (OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_inference[/dup])
METRIC_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
METRIC_INFERENCE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.input_tokens"
METRIC_INFERENCE_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.output_tokens"
METRIC_INFERENCE_CACHE_READ_TOKENS: Final = "gen_ai.client.inference.usage.cache_read.input_tokens"
METRIC_INFERENCE_REASONING_TOKENS: Final = "gen_ai.client.inference.usage.reasoning.output_tokens"
METRIC_INFERENCE_TTFC: Final = "gen_ai.client.inference.time_to_first_chunk"
METRIC_INFERENCE_TPOC: Final = "gen_ai.client.inference.time_per_output_chunk"

# --- histogram buckets (semconv advice for the gen_ai.client.* metrics) -----------------------
OPERATION_DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_USAGE_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
ENCODER_DURATION_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# --- environment ------------------------------------------------------------------------------
ENV_CAPTURE_CONTENT: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_COMPLETION_HOOK: Final = "OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK"
ENV_UPLOAD_BASE_PATH: Final = "OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH"
ENV_IMAGE_MAX_BYTES: Final = "PIXEL_LLM_OTEL_CAPTURE_IMAGE_MAX_BYTES"
ENV_SEMCONV_OPT_IN: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
OPT_IN_INFERENCE: Final = "gen_ai_inference"  # the coming names only
OPT_IN_INFERENCE_DUP: Final = "gen_ai_inference/dup"  # the current and the coming names

# --- names not (yet) in the opentelemetry-semantic-conventions package ------------------------
#: Spelled as the reference implementation (opentelemetry-util-genai) spells them; a test finds
#: each in its source when it is installed.
REFERENCE_NAMES: Final = frozenset(
    {
        EVENT_OPERATION_DETAILS,
        GEN_AI_USAGE_IMAGE_INPUT_TOKENS,
        GEN_AI_INPUT_MESSAGES_REF,
        GEN_AI_OUTPUT_MESSAGES_REF,
        GEN_AI_SYSTEM_INSTRUCTIONS_REF,
    }
)
#: The conventions' next release (the migration guide; unreleased): emitted only when opted in.
COMING_NAMES: Final = frozenset(
    {
        EVENT_OPERATION_EXCEPTION,
        METRIC_INFERENCE_DURATION,
        METRIC_INFERENCE_INPUT_TOKENS,
        METRIC_INFERENCE_OUTPUT_TOKENS,
        METRIC_INFERENCE_CACHE_READ_TOKENS,
        METRIC_INFERENCE_REASONING_TOKENS,
        METRIC_INFERENCE_TTFC,
        METRIC_INFERENCE_TPOC,
    }
)
