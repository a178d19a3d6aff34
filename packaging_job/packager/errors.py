"""The one exception the job reports to the user."""


class PackagingError(Exception):
    """A failure the user can act on; its text becomes the job's FailureReason."""
