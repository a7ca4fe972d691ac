"""Typed errors of the users app."""

from ecommerce.errors import Conflict, Forbidden, InvalidInput


class EmailAlreadyRegistered(Conflict):
    code = "email_taken"
    title = "Email already registered"

    def __init__(self, *, email: str) -> None:
        super().__init__(f"An account with the email {email} already exists.")


class SetPasswordTokenInvalid(InvalidInput):
    code = "set_password_token_invalid"
    title = "Invalid set-password link"

    def __init__(self) -> None:
        super().__init__(
            "This set-password link is not valid or was already used; request a new one."
        )


class SetPasswordTokenExpired(InvalidInput):
    code = "set_password_token_expired"
    title = "Expired set-password link"

    def __init__(self) -> None:
        super().__init__("This set-password link has expired; request a new one.")


class AlreadySignedIn(Forbidden):
    code = "already_signed_in"
    title = "Already signed in"

    def __init__(self) -> None:
        super().__init__(
            "A signed-in customer cannot register another account; sign out first "
            "(support staff may register accounts for customers)."
        )
