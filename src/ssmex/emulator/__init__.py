"""A loopback-only stand-in for the AWS side of Session Manager, for tests and demos."""
