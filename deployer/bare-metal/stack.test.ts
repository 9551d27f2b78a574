import { describe, expect, test } from "bun:test";
import { parseStack } from "../stack.ts";
import { stackProblems } from "../../test/support/stack-problems.ts";

/** Stack files with bare-metal inventory: the machines, the provisioning network, and the rules between them and the roles. */
const FILE = "/stacks/metal.yaml";

const METAL = `version: 1
provisioning:
  address: 10.77.0.1
  interface: br0
  dhcp: { range: 10.77.0.100-10.77.0.199 }
  ramdisk: ooo-deploy@stable
inventory:
  rack1:
    driver: ipmi
    machines:
      m1:
        bmc: { address: "127.0.0.1:6230", credentials: bmc/m1.yaml }
        macs: ["52-54-00-AA-00-01"]
        boot_mode: bios
        root_device: { serial: ROOT-1 }
        console_log: consoles/m1.log
      m2:
        bmc: { address: 10.0.0.2, credentials: /etc/ooo/m2.yaml }
        macs: [52:54:00:aa:00:02]
  rack2:
    driver: redfish
    standby: true
    machines:
      r1:
        bmc: { url: "https://10.0.0.9/redfish/v1/Systems/1", credentials: bmc/r1.yaml, ca_file: bmc/ca.pem }
        macs: [52:54:00:aa:00:03]
roles:
  web:
    count: 2
    image: kv@live
    inventory: rack1
    nodes: { web-0: { machine: m2 } }
  db:
    count: 1
    image: kv@live
    inventory: rack2
`;

const problems = (text: string) => stackProblems(text, FILE);

describe("bare-metal stack files", () => {
  test("machines: paths made absolute, MACs normalised, defaults; the provisioning network; a node's machine", () => {
    const s = parseStack(METAL, FILE);
    const rack1 = s.inventory.rack1 as { machines: Record<string, { bmc: { credentials: string }; macs: string[]; boot_mode: string; console_log?: string; console: string }> };
    expect(rack1.machines.m1).toMatchObject({
      bmc: { address: "127.0.0.1:6230", credentials: "/stacks/bmc/m1.yaml" },
      macs: ["52:54:00:aa:00:01"],
      boot_mode: "bios",
      console_log: "/stacks/consoles/m1.log",
      console: "ttyS0,115200n8",
    });
    expect(rack1.machines.m2).toMatchObject({ bmc: { credentials: "/etc/ooo/m2.yaml" }, boot_mode: "uefi" });
    expect((s.inventory.rack2 as { machines: Record<string, { bmc: unknown }> }).machines.r1!.bmc).toEqual({
      url: "https://10.0.0.9/redfish/v1/Systems/1",
      credentials: "/stacks/bmc/r1.yaml",
      ca_file: "/stacks/bmc/ca.pem",
    });
    expect(s.provisioning).toEqual({
      address: "10.77.0.1",
      interface: "br0",
      dhcp: { range: ["10.77.0.100", "10.77.0.199"] },
      ramdisk: "ooo-deploy@stable",
      ports: { metadata: 6385, store: 9292, http: 8080, ironic: 6386 },
    });
    expect(s.nodes.map((n) => [n.name, n.driver, n.machine])).toEqual([
      ["web-0", "ipmi", "m2"],
      ["web-1", "ipmi", undefined],
      ["db-0", "redfish", undefined],
    ]);
  });

  test.each([
    ["no provisioning network", METAL.replace(/provisioning:\n(  .*\n){4}/, ""), [`${FILE}:1 provisioning: is required: inventory rack1, rack2 has machines that boot from the provisioning network (address, interface, dhcp, ramdisk)`]],
    ["a MAC that is no MAC", METAL.replace('"52-54-00-AA-00-01"', "52:54:00:aa:00"), [`${FILE}:13 inventory.rack1.machines.m1.macs.0: 52:54:00:aa:00 is not a MAC address (aa:bb:cc:dd:ee:ff)`]],
    ["a MAC on two machines", METAL.replace("52:54:00:aa:00:03", "52:54:00:aa:00:02"), [`${FILE}:26 inventory.rack2.machines.r1.macs.0: 52:54:00:aa:00:02 is machine m2's too`]],
    ["more nodes than machines", METAL.replace("count: 2", "count: 3"), [`${FILE}:10 inventory.rack1.machines: the roles want 3 nodes from rack1, which has 2 machines`]],
    ["a machine that is not in the entry", METAL.replace("machine: m2", "machine: m9"), [`${FILE}:32 roles.web.nodes.web-0.machine: no machine m9 in inventory rack1 (machines: m1, m2)`]],
    ["a Redfish URL that is no system", METAL.replace("/redfish/v1/Systems/1", "/redfish/v1"), [`${FILE}:25 inventory.rack2.machines.r1.bmc.url: the machine's ComputerSystem: https://BMC/redfish/v1/Systems/ID`]],
    ["a DHCP setting of neither kind", METAL.replace("{ range: 10.77.0.100-10.77.0.199 }", "{ static: true }"), [`${FILE}:5 provisioning.dhcp: must be {range: FIRST-LAST} or {proxy: true}`]],
    ["a DHCP range that is none", METAL.replace("{ range: 10.77.0.100-10.77.0.199 }", "{ range: 10.77.0.100 }"), [`${FILE}:5 provisioning.dhcp.range: FIRST-LAST, e.g. 10.77.0.100-10.77.0.199`]],
  ])("refused: %s", (_, text, expected) => {
    expect(problems(text)).toEqual(expected);
  });
});
