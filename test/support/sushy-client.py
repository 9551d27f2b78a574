"""Drive one Redfish system with sushy, the client library Ironic's redfish
driver uses (Debian python3-sushy), and print what it read as JSON.

usage: /usr/bin/python3 sushy-client.py URL SYSTEM_ID CREDENTIALS_FILE ACTION...
actions (run in order): show | pxe-once | on | off
The credentials file is the test bed's {"username", "password"}: the
password never appears on a command line. sushy's default authentication
(session, else basic) is used, as Ironic's default "auto" does.
"""
import json
import logging
import sys

import sushy

logging.basicConfig(level=logging.ERROR)


def show(system):
    system.refresh()
    return {
        "power": str(system.power_state.value if hasattr(system.power_state, "value") else system.power_state),
        "target": str(system.boot.target.value if system.boot.target is not None else None),
        "enabled": str(system.boot.enabled.value if system.boot.enabled is not None else None),
        "mode": str(system.boot.mode.value if system.boot.mode is not None else None),
        "allowed_resets": sorted(str(v.value) for v in system.get_allowed_reset_system_values()),
        "macs": [nic.mac_address for nic in system.ethernet_interfaces.get_members()],
    }


def main(url, system_id, credentials_file, *actions):
    with open(credentials_file) as f:
        creds = json.load(f)
    root = sushy.Sushy(url, username=creds["username"], password=creds["password"])
    system = root.get_system(f"/redfish/v1/Systems/{system_id}")
    out = []
    for action in actions:
        if action == "show":
            out.append(show(system))
        elif action == "pxe-once":
            mode = system.boot.mode
            system.set_system_boot_options(sushy.BOOT_SOURCE_TARGET_PXE, enabled=sushy.BOOT_SOURCE_ENABLED_ONCE, mode=mode)
            out.append("pxe-once")
        elif action == "on":
            system.reset_system(sushy.RESET_ON)
            out.append("on")
        elif action == "off":
            system.reset_system(sushy.RESET_FORCE_OFF)
            out.append("off")
        else:
            raise SystemExit(f"unknown action {action}")
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main(*sys.argv[1:])
    except sushy.exceptions.SushyError as e:
        print(json.dumps({"error": type(e).__name__, "message": str(e)}))
        sys.exit(3)
