"""The API gateway: routing, parsing, authentication, permissions and RFC 9457 errors."""
