"""Users, sign-in, sessions and API tokens, invitations, and who may do what."""
