"""Helpers the tests share: loopback servers, real tools started and stopped, third-party readers."""
