-- Invitations a person accepts themselves; role changes recorded.
SELECT 1;
