-- What a customer paying by bank transfer needs (account holder, account
-- or IBAN, bank): written by the brand, shown in the payment instructions.
ALTER TABLE brands ADD COLUMN bank_details TEXT;
