"""Typed errors of the users app."""

from ecommerce.errors import Conflict


class EmailAlreadyRegistered(Conflict):
    code = "email_taken"
    title = "Email already registered"

    def __init__(self, *, email: str) -> None:
        super().__init__(f"An account with the email {email} already exists.")
