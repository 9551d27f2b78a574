import { describe, expect, test } from "bun:test";
import { ControlError, parseControl } from "./control.ts";

// [control file, what python3-os-apply-config's OacFile made of it: settings or its error message]
// Printed by Debian's python3-os-apply-config 12.0.0 (PyYAML safe_load + OacFile).
type Expected = { mode: number | null; owner: number | null; group: number | null; allow_empty: boolean } | string;
const table: [string, Expected][] = [
  ["mode: 0600", {"mode": 384, "owner": null, "group": null, "allow_empty": true}],
  ["mode: 0o755", "mode '0o755' is not numeric"],
  ["mode: '0600'", "mode '0600' is not numeric"],
  ["mode: 755", "mode '0o1363' out of range"],
  ["mode: 0x1ed", {"mode": 493, "owner": null, "group": null, "allow_empty": true}],
  ["mode: 0b111101101", {"mode": 493, "owner": null, "group": null, "allow_empty": true}],
  ["mode: -1", "mode '-0o1' out of range"],
  ["mode: 0_644", {"mode": 420, "owner": null, "group": null, "allow_empty": true}],
  ["mode: 644.0", "mode '644.0' is not numeric"],
  ["mode: true", "mode 'True' is not numeric"],
  ["mode: ~", "mode 'None' is not numeric"],
  ["mode: 1:30", {"mode": 90, "owner": null, "group": null, "allow_empty": true}],
  ["mode: 08", "mode '08' is not numeric"],
  ["allow_empty: yes", {"mode": null, "owner": null, "group": null, "allow_empty": true}],
  ["allow_empty: 'yes'", "allow_empty requires Boolean, got: 'yes'"],
  ["allow_empty: y", "allow_empty requires Boolean, got: 'y'"],
  ["allow_empty: Off", {"mode": null, "owner": null, "group": null, "allow_empty": false}],
  ["allow_empty: 0", "allow_empty requires Boolean, got: '0'"],
  ["owner: root", {"mode": null, "owner": 0, "group": null, "allow_empty": true}],
  ["owner: 0", {"mode": null, "owner": 0, "group": null, "allow_empty": true}],
  ["owner: '0'", "owner '0' not found in passwd database"],
  ["owner: true", "owner 'True' must be a string or int"],
  ["owner: [root]", "owner '['root']' must be a string or int"],
  ["group: nogroup", {"mode": null, "owner": null, "group": 65534, "allow_empty": true}],
  ["group: 65534", {"mode": null, "owner": null, "group": 65534, "allow_empty": true}],
  ["owner: no-such-user", "owner 'no-such-user' not found in passwd database"],
  ["colour: blue", "unrecognised file control key 'colour'"],
  ["", {"mode": null, "owner": null, "group": null, "allow_empty": true}],
  ["# only a comment", {"mode": null, "owner": null, "group": null, "allow_empty": true}],
  ["- a list", "header is not a dict"],
  ["false", {"mode": null, "owner": null, "group": null, "allow_empty": true}],
  ["just a string", "header is not a dict"],
  ["mode: 2001-12-14", "mode '2001-12-14' is not numeric"],
  ["mode: !!int '0600'", {"mode": 384, "owner": null, "group": null, "allow_empty": true}],
];

describe(".oac control files like os-apply-config", () => {
  test.each(table)("%j", (text, expected) => {
    if (typeof expected === "string") {
      expect(() => parseControl(text)).toThrow(new ControlError(expected));
      return;
    }
    const c = parseControl(text);
    expect({ mode: c.mode ?? null, owner: c.uid ?? null, group: c.gid ?? null, allow_empty: c.allowEmpty }).toEqual(expected);
  });
});
