-- A neutralized copy must neither sign requests to the production PBX nor accept
-- its events: forget the credentials and disable the accounts.
UPDATE mango_account
   SET api_key = NULL,
       api_salt = NULL,
       active = false,
       connection_state = 'unknown';
