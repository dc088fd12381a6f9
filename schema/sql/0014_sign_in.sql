-- Sign-in throttling, password changes and token expiry.
SELECT 1;
