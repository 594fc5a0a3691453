"""What the Nova transport makes of the SDK's exceptions (no network)."""

from __future__ import annotations

import json

from aws_sdk_bedrock_runtime.models import ThrottlingException, ValidationException
from awscrt.exceptions import AwsCrtError
from smithy_aws_event_stream.exceptions import UnmodeledEventError
from smithy_core.exceptions import CallError

import s2s
from s2s.providers.nova.protocol import error_for
from s2s.providers.nova.transport import _describe


def frame(exc: BaseException) -> dict:
    return json.loads(_describe(exc))["exception"]


def error(exc: BaseException) -> s2s.S2SError:
    body = frame(exc)
    return error_for(
        body["type"], body["message"], body.get("status"), retryable=body.get("retryable")
    )


def test_modelled_exceptions_keep_their_type_and_message():
    assert frame(ValidationException(message="bad voice")) == {
        "type": "ValidationException",
        "message": "bad voice",
    }
    assert isinstance(error(ThrottlingException(message="slow")), s2s.RateLimitError)


def test_unmodelled_http_errors_keep_the_status_and_code():
    exc = CallError(
        message="Unknown error for operation com.amazonaws.bedrockruntime#"
        "InvokeModelWithBidirectionalStream - status: 403 - id: "
        "com.amazonaws.bedrockruntime#UnrecognizedClientException"
    )
    assert frame(exc)["type"] == "UnrecognizedClientException" and frame(exc)["status"] == 403
    err = error(exc)
    assert isinstance(err, s2s.AuthenticationError) and "credentials" in err.message
    server = CallError(message="Unknown error for operation X - status: 502")
    assert error(server).retryable


def test_unmodelled_stream_errors_keep_their_code():
    exc = UnmodeledEventError("InvalidSignatureException", "chain broken")
    assert frame(exc) == {"type": "InvalidSignatureException", "message": "chain broken"}


def test_tls_failures_are_not_retried_and_point_at_the_ca_file():
    exc = AwsCrtError(
        code=1029,
        name="AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE",
        message="TLS (SSL) negotiation failed",
    )
    err = error(exc)
    assert isinstance(err, s2s.ProviderConnectionError) and not err.retryable
    assert "ca_file" in err.message
    refused = AwsCrtError(code=1049, name="AWS_IO_SOCKET_CONNECTION_REFUSED", message="refused")
    assert error(refused).retryable
