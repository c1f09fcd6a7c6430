"""Start AWS Systems Manager Session Manager sessions and hand them to a client."""

__version__ = "0.1.0"
