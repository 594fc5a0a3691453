"""The Nova emulator's errors as Bedrock words them: HTTP status by type, production messages,
the end-of-life refusal, and which in-stream types the stream's error union models."""

from __future__ import annotations

__all__ = ["EOL_REFUSAL", "MESSAGES", "STATUS", "STREAM_EXCEPTIONS", "message_for"]

STATUS = {
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
    "IncompleteSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
    "UnknownOperationException": 404,
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 400,  # Bedrock Runtime's model: a client error, 400
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}

#: Production's wording, by error type (in-stream types in their HTTP spelling).
MESSAGES = {
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "ServiceQuotaExceededException": (
        "Your request exceeds the service quota for your account. You can view your quotas at "
        "Viewing service quotas. You can resubmit your request later."
    ),
    "ModelNotReadyException": "Model is not ready to serve inference requests.",
    "ServiceUnavailableException": "Service is temporarily unavailable. Please retry.",
    "ModelTimeoutException": "Model has timed out in processing the request",
}
#: The answer to a retired model id. For InvokeModel, Converse and GetFoundationModel Bedrock
#: answers a model past its end of life with this 404 before anything runs (wording as reported
#: by users, verbatim). Nobody has published the bidirectional stream's refusal; the same
#: pre-stream 404 is the plausible shape (a chosen shape, not an observed one).
EOL_REFUSAL = (
    "ResourceNotFoundException",
    "This model version has reached the end of its life. Please refer to the AWS documentation "
    "for more details.",
)


def message_for(error_type: str, message: str | None) -> str:
    """``message``, or production's wording for ``error_type`` when none is given."""
    return message if message is not None else MESSAGES.get(error_type, error_type)


#: The error members of the stream's output union (what ``:exception-type`` may name).
STREAM_EXCEPTIONS = frozenset(
    {
        "internalServerException",
        "modelStreamErrorException",
        "modelTimeoutException",
        "serviceUnavailableException",
        "throttlingException",
        "validationException",
    }
)
