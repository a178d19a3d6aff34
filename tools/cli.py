"""How the command-line tools end: one actionable line for every expected failure.

Each tool's `main(argv)` runs under `run()`, which turns the failures a user
meets every day (no credentials, a profile this machine lacks, an expired SSO
session, access denied, a stage that is unknown or not deployed, bad config)
into one line on stderr and exit code 1. `--debug` on the command line, or
DEBUG=1 in the environment (`make logs DEBUG=1`), shows the traceback instead.
An unexpected exception keeps its traceback: that is a bug to report.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

from botocore import exceptions as boto

from stacks.stage.schema import ConfigError

# ClientError codes that mean "these credentials may not do this".
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
}


class UserError(Exception):
    """An expected failure; its message is the one line the user reads."""


def explain(error: BaseException) -> str | None:
    """The one line for an expected failure, None for anything else."""
    if isinstance(error, ConfigError):
        return f"Configuration error: {error}"
    if isinstance(error, UserError):
        return str(error)
    if isinstance(error, boto.ProfileNotFound):
        return (
            f"AWS profile {error.kwargs.get('profile')!r} (from AWS_PROFILE or AWS_DEFAULT_PROFILE) is "
            "not in this machine's AWS config: fix or unset it, or create it with "
            "`aws configure --profile NAME`."
        )
    if isinstance(error, boto.ConfigParseError):
        return f"The AWS config file cannot be read ({error}): fix its syntax."
    if isinstance(error, boto.InvalidConfigError):
        return f"The AWS profile is not usable ({error}): check its source_profile, role_arn or sso settings."
    if isinstance(error, boto.CredentialRetrievalError):
        return f"The AWS credentials could not be obtained ({error}): check the profile's credential_process."
    if isinstance(error, (boto.NoCredentialsError, boto.PartialCredentialsError)):
        return (
            "No AWS credentials found: set AWS_PROFILE (then `aws sso login` for an SSO "
            "profile), or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        )
    if isinstance(
        error, (boto.TokenRetrievalError, boto.SSOTokenLoadError, boto.UnauthorizedSSOTokenError, boto.SSOError)
    ):
        return "The AWS SSO session has expired or was never started: run `aws sso login`."
    if isinstance(error, boto.ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        # One line, however the service words (or marks up) its message.
        message = " ".join(str(error.response.get("Error", {}).get("Message", "")).split())[:300]
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _DENIED or status == 403:
            return (
                f"AWS refused {error.operation_name} ({code}: {message}): check that the "
                "credentials in use belong to the stage's account and may do this."
            )
        return f"AWS {error.operation_name} failed ({code}: {message})."
    if isinstance(
        error,
        (boto.EndpointConnectionError, boto.ConnectTimeoutError, boto.ReadTimeoutError, boto.ConnectionClosedError),
    ):
        return f"Cannot reach AWS ({error}): check the network, a proxy, or the region."
    if isinstance(error, boto.BotoCoreError):
        # Any other failure of the AWS SDK itself: its own words, on one line.
        return f"AWS SDK: {' '.join(str(error).split())}"
    return None


def switched_on(value: str | None) -> bool:
    """A make switch (DEBUG=, VERBOSE=): unset, empty and 0 mean off."""
    return value not in (None, "", "0")


def debugging(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> bool:
    variables = os.environ if environ is None else environ
    return "--debug" in argv or switched_on(variables.get("DEBUG"))


def run(main: Callable[[list[str]], int], argv: Sequence[str] | None = None) -> int:
    """Run `main` with the arguments (minus `--debug`); one line on expected failures."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debugging(argv)
    try:
        return main([arg for arg in argv if arg != "--debug"])
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except Exception as error:
        line = None if debug else explain(error)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 1
