"""The accounts and access service: one object for the app's state and the routes, made of
sign-in, sessions and tokens (``sessions``), passwords and their resets (``passwords``) and
accepting invitations (``invitations``)."""

from __future__ import annotations

from timebank.auth.invitations import Invitations
from timebank.auth.passwords import Passwords


class AuthService(Passwords, Invitations):
    """Sign-in with growing delays, sessions and API tokens, passwords and their resets,
    invitations, and who a request is."""
