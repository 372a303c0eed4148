"""What each kind of directory (Active Directory, OpenLDAP) offers out of the box.

A preset names the anchor and login attributes, says what a person and a group
are in that directory, and gives the mapping lines a new directory starts with.
"""

from dataclasses import dataclass

from .settings import FieldMapping

KINDS = ("ad", "openldap")


@dataclass(frozen=True)
class DirectoryPreset:
    kind: str
    anchor_attribute: str
    login_attribute: str
    root_filter: str
    group_filter: str
    attributes: tuple
    field_mappings: tuple
    # when the entry was created: the tie-breaker between people the directory
    # gives the same extension (see ExtensionClaim)
    created_attribute: str = ""


PRESETS = {
    "ad": DirectoryPreset(
        kind="ad",
        anchor_attribute="objectGUID",
        login_attribute="sAMAccountName",
        root_filter="(&(objectCategory=person)(objectClass=user))",
        group_filter="(objectClass=group)",
        attributes=(
            "objectGUID",
            "sAMAccountName",
            "userPrincipalName",
            "displayName",
            "cn",
            "givenName",
            "sn",
            "mail",
            "telephoneNumber",
            "ipPhone",
            "mobile",
            "title",
            "department",
            "company",
            "employeeID",
            "userAccountControl",
            "accountExpires",
            "memberOf",
            "whenChanged",
            "uSNChanged",
        ),
        field_mappings=(
            FieldMapping("sAMAccountName", "user.login", ("first", "trim", "lower")),
            FieldMapping("displayName", "user.name"),
            FieldMapping("cn", "user.name"),
            FieldMapping("mail", "user.email", ("first", "trim", "lower")),
            FieldMapping("telephoneNumber", "employee.work_phone", ("first", "phone")),
            FieldMapping("mobile", "employee.mobile_phone", ("first", "phone")),
            FieldMapping("mobile", "pbx.mobile", ("first", "phone")),
            FieldMapping("title", "employee.job_title"),
            FieldMapping("title", "pbx.position"),
            FieldMapping("department", "pbx.department"),
            FieldMapping("ipPhone", "extension", ("first", "digits"), rule="always"),
        ),
        created_attribute="whenCreated",
    ),
    "openldap": DirectoryPreset(
        kind="openldap",
        anchor_attribute="entryUUID",
        login_attribute="uid",
        root_filter="(objectClass=inetOrgPerson)",
        group_filter="(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
        attributes=(
            "entryUUID",
            "uid",
            "cn",
            "displayName",
            "givenName",
            "sn",
            "mail",
            "telephoneNumber",
            "mobile",
            "title",
            "ou",
            "departmentNumber",
            "employeeNumber",
            "memberOf",
            "modifyTimestamp",
        ),
        field_mappings=(
            FieldMapping("uid", "user.login", ("first", "trim", "lower")),
            FieldMapping("displayName", "user.name"),
            FieldMapping("cn", "user.name"),
            FieldMapping("mail", "user.email", ("first", "trim", "lower")),
            FieldMapping("telephoneNumber", "employee.work_phone", ("first", "phone")),
            FieldMapping("mobile", "employee.mobile_phone", ("first", "phone")),
            FieldMapping("mobile", "pbx.mobile", ("first", "phone")),
            FieldMapping("title", "employee.job_title"),
            FieldMapping("title", "pbx.position"),
            FieldMapping("ou", "pbx.department"),
        ),
        created_attribute="createTimestamp",
    ),
}
