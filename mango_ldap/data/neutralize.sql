-- A copy of production must not read the real directory or reprovision the PBX.
UPDATE mango_ldap_directory SET bind_password = NULL, active = FALSE, signin_enabled = FALSE;
DELETE FROM mango_ldap_sip_secret;
DELETE FROM res_company_ldap WHERE mango_directory_id IS NOT NULL;
