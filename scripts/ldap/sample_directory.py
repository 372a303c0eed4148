#!/usr/bin/env python3
"""Generate the sample OpenLDAP directory loaded by scripts/ldap/slapd.sh (LDIF on stdout).

    python3 scripts/ldap/sample_directory.py --base dc=example,dc=test --users 250

People live in two OUs (ou=people and ou=sales,ou=people) so scope tests have something
to tell apart; groups are nested (pbx-operators ⊃ sales-team ⊃ users) so the iterative
membership resolution is exercised. Deterministic: same arguments, same LDIF.

``--member-of`` writes each entry's ``memberOf`` (the memberof overlay's back-links) into
the LDIF itself, for ``slapadd``: an offline load of 100,000 people takes seconds where
one ``ldapadd`` per entry through the overlay takes many minutes.
"""

import argparse


def ldif(base, users, member_of=False):
    out = []
    people = f"ou=people,{base}"
    sales = f"ou=sales,{people}"
    groups = f"ou=groups,{base}"
    sales_team = f"cn=sales-team,{groups}"
    operators = f"cn=pbx-operators,{groups}"
    supervisors = f"cn=pbx-supervisors,{groups}"

    def direct_groups(i):
        """The groups whose ``member`` names person ``i`` (see below)."""
        found = [sales_team] if i % 5 == 0 else []
        if i <= 2:
            found.append(operators)
        if i <= 3:
            found.append(supervisors)
        return found

    def add(dn, **attrs):
        out.append(f"dn: {dn}")
        for name, value in attrs.items():
            for item in value if isinstance(value, list) else [value]:
                out.append(f"{name}: {item}")
        out.append("")

    add(sales, objectClass="organizationalUnit", ou="sales")
    dns = []
    for i in range(1, users + 1):
        uid = f"user{i:04d}"
        parent = sales if i % 5 == 0 else people
        dn = f"uid={uid},{parent}"
        dns.append(dn)
        extra = {"memberOf": direct_groups(i)} if member_of else {}
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
            **extra,
        )
    sales_members = [d for d in dns if ",ou=sales," in d]
    add(
        sales_team,
        objectClass="groupOfNames",
        cn="sales-team",
        member=sales_members,
        **({"memberOf": [operators]} if member_of else {}),
    )
    add(
        operators,
        objectClass="groupOfNames",
        cn="pbx-operators",
        member=[sales_team, dns[0], dns[1]],
    )
    add(
        supervisors,
        objectClass="groupOfNames",
        cn="pbx-supervisors",
        member=dns[:3],
    )
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="dc=example,dc=test")
    parser.add_argument("--users", type=int, default=250)
    parser.add_argument("--member-of", action="store_true")
    args = parser.parse_args()
    print(ldif(args.base, args.users, member_of=args.member_of))


if __name__ == "__main__":
    main()
