"""Users and roles on an auth-enabled Milvus, for the --rbac system tests.

  rbac_util.py PORT setup PREFIX          roles PREFIX_reader/_writer with grants,
                                          users PREFIX_alice, _bob, _carol with roles
  rbac_util.py PORT user NAME PASSWORD    create one user (no roles)
  rbac_util.py PORT state PREFIX          JSON: roles, grants, users' roles (PREFIX_* only)
  rbac_util.py PORT login USER PASSWORD   exit 0 if USER can log in with PASSWORD
  rbac_util.py PORT cleanup PREFIX        drop PREFIX_* users and roles (grants first)

Connects as root/Milvus (the test servers' root).
"""
import json
import os
import sys

os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"
from pymilvus import Role, connections, utility  # noqa: E402

GRANTS = {
    "reader": [("Collection", "*", "Query"), ("Collection", "*", "Search"), ("Global", "*", "DescribeCollection")],
    "writer": [("Collection", "*", "Insert"), ("Global", "*", "CreateCollection"), ("User", "*", "UpdateUser"), ("Global", "*", "ListDatabases")],
}


def connect(port, user="root", password="Milvus", alias="default"):
    connections.connect(alias=alias, host="127.0.0.1", port=port, user=user, password=password, timeout=10)


def state(prefix):
    roles = sorted(r.role_name for r in utility.list_roles(False).groups if r.role_name.startswith(prefix))
    grants = []
    for r in roles:
        for g in Role(r).list_grants().groups:
            grants.append([g.role_name, g.object, g.object_name, g.privilege, g.db_name])
    users = {}
    for u in utility.list_users(include_role_info=True).groups:
        if u.username.startswith(prefix):
            users[u.username] = sorted(u.roles)
    return {"roles": roles, "grants": sorted(grants), "users": users}


def main():
    port, cmd, *args = sys.argv[1:]
    if cmd == "login":
        try:
            connect(port, args[0], args[1], alias="login")
            utility.list_collections(using="login")
        except Exception as e:  # noqa: BLE001
            print(f"login refused: {e}", file=sys.stderr)
            sys.exit(1)
        return
    connect(port)
    if cmd == "setup":
        p = args[0]
        for name, grants in GRANTS.items():
            role = Role(f"{p}_{name}")
            role.create()
            for obj, obj_name, privilege in grants:
                role.grant(obj, obj_name, privilege)
        for user, role in [("alice", "reader"), ("alice", "writer"), ("bob", "reader"), ("carol", "writer")]:
            if f"{p}_{user}" not in utility.list_usernames():
                utility.create_user(f"{p}_{user}", f"{user}-source-pw")
            Role(f"{p}_{role}").add_user(f"{p}_{user}")
    elif cmd == "user":
        utility.create_user(args[0], args[1])
    elif cmd == "state":
        print(json.dumps(state(args[0])))
    elif cmd == "cleanup":
        s = state(args[0])
        for user, roles in s["users"].items():
            for r in roles:
                Role(r).remove_user(user)
        for role, obj, obj_name, privilege, db in s["grants"]:
            Role(role).revoke(obj, obj_name, privilege, db_name=db)
        for r in s["roles"]:
            for u in Role(r).get_users():
                Role(r).remove_user(u)
            Role(r).drop()
        for u in s["users"]:
            utility.delete_user(u)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
