#!/usr/bin/env python3
"""Generate the sample OpenLDAP directory loaded by scripts/ldap/slapd.sh (LDIF on stdout).

    python3 scripts/ldap/sample_directory.py --base dc=example,dc=test --users 250

People live in two OUs (ou=people and ou=sales,ou=people) so scope tests have something
to tell apart; groups are nested (pbx-operators ⊃ sales-team ⊃ users) so the iterative
membership resolution is exercised. Deterministic: same arguments, same LDIF.
"""

import argparse


def ldif(base, users):
    out = []

    def add(dn, **attrs):
        out.append(f"dn: {dn}")
        for name, value in attrs.items():
            for item in value if isinstance(value, list) else [value]:
                out.append(f"{name}: {item}")
        out.append("")

    people = f"ou=people,{base}"
    sales = f"ou=sales,{people}"
    groups = f"ou=groups,{base}"
    add(sales, objectClass="organizationalUnit", ou="sales")
    dns = []
    for i in range(1, users + 1):
        uid = f"user{i:04d}"
        parent = sales if i % 5 == 0 else people
        dn = f"uid={uid},{parent}"
        dns.append(dn)
        add(
            dn,
            objectClass=["inetOrgPerson", "organizationalPerson", "person"],
            uid=uid,
            cn=f"Given{i} Surname{i}",
            sn=f"Surname{i}",
            givenName=f"Given{i}",
            displayName=f"Given{i} Surname{i}",
            mail=f"{uid}@example.test",
            telephoneNumber=f"+7 495 100-{i // 100:02d}-{i % 100:02d}",
            mobile=f"8 (916) 200-{i // 100:02d}-{i % 100:02d}",
            title="Sales manager" if i % 5 == 0 else "Engineer",
            ou="Sales" if i % 5 == 0 else "R&D",
            employeeNumber=str(1000 + i),
            userPassword=f"Pw-{uid}-1",
        )
    sales_members = [d for d in dns if ",ou=sales," in d]
    add(
        f"cn=sales-team,{groups}",
        objectClass="groupOfNames",
        cn="sales-team",
        member=sales_members,
    )
    add(
        f"cn=pbx-operators,{groups}",
        objectClass="groupOfNames",
        cn="pbx-operators",
        member=[f"cn=sales-team,{groups}", dns[0], dns[1]],
    )
    add(
        f"cn=pbx-supervisors,{groups}",
        objectClass="groupOfNames",
        cn="pbx-supervisors",
        member=dns[:3],
    )
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="dc=example,dc=test")
    parser.add_argument("--users", type=int, default=250)
    args = parser.parse_args()
    print(ldif(args.base, args.users))


if __name__ == "__main__":
    main()
