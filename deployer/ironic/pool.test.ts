import { describe, expect, test } from "bun:test";
import { stackProblems } from "../../test/support/stack-problems.ts";
import { parseStack } from "../stack.ts";

/**
 * Stack files with `driver: ironic`: the embedded Ironic's machines (as
 * for ipmi and redfish), a site's Ironic (nodes by name, a resource class,
 * an http_basic login), and what each may not say.
 */
const FILE = "/stacks/metal.yaml";

const PROVISIONING = `provisioning:
  address: 10.77.0.1
  interface: br0
  dhcp: { range: 10.77.0.100-10.77.0.199 }
  ramdisk: ooo-deploy@stable
  ports: { ironic: 6400 }
`;

const EMBEDDED = `version: 1
${PROVISIONING}inventory:
  rack:
    driver: ironic
    url: embedded
    machines:
      u1:
        bmc: { address: "127.0.0.11:6230", credentials: bmc/u1.yaml }
        macs: ["52-54-00-77-00-10"]
        console_log: consoles/u1.log
      b1:
        bmc: { url: "https://10.0.0.9/redfish/v1/Systems/1", credentials: bmc/b1.yaml, ca_file: bmc/ca.pem }
        macs: [52:54:00:77:00:11]
        boot_mode: bios
roles:
  web:
    count: 2
    image: kv@live
    nodes: { web-0: { machine: b1 } }
`;

const SITE = `version: 1
${PROVISIONING}inventory:
  cloud:
    driver: ironic
    url: https://ironic.example:6385
    credentials: ironic.yaml
    ca_file: ironic-ca.pem
    resource_class: baremetal
    machines:
      big: { node: 4f6c0c8e-9a43-4a1e-9d5e-5b0e4c3b3f21, root_device: { size: 960 } }
roles:
  web:
    count: 3
    image: kv@live
`;

const problems = (text: string) => stackProblems(text, FILE);

describe("ironic stack files", () => {
  test("the embedded Ironic's machines: as ipmi and redfish machines (BMC, MACs, boot mode), paths absolute; its port", () => {
    const s = parseStack(EMBEDDED, FILE);
    expect(s.inventory.rack).toMatchObject({
      driver: "ironic",
      url: "embedded",
      machines: {
        u1: { bmc: { address: "127.0.0.11:6230", credentials: "/stacks/bmc/u1.yaml" }, macs: ["52:54:00:77:00:10"], console_log: "/stacks/consoles/u1.log", console: "ttyS0,115200n8" },
        b1: { bmc: { url: "https://10.0.0.9/redfish/v1/Systems/1", credentials: "/stacks/bmc/b1.yaml", ca_file: "/stacks/bmc/ca.pem" }, boot_mode: "bios" },
      },
    });
    expect(s.provisioning!.ports).toEqual({ metadata: 6385, store: 9292, http: 8080, ironic: 6400 });
    expect(s.nodes.map((n) => [n.name, n.driver, n.machine])).toEqual([
      ["web-0", "ironic", "b1"],
      ["web-1", "ironic", undefined],
    ]);
  });

  test("a site's Ironic: its URL, login and CA, nodes by name or UUID, more claimed from a resource class (so more nodes than machines)", () => {
    const s = parseStack(SITE, FILE);
    expect(s.inventory.cloud).toEqual({
      driver: "ironic",
      url: "https://ironic.example:6385",
      credentials: "/stacks/ironic.yaml",
      ca_file: "/stacks/ironic-ca.pem",
      resource_class: "baremetal",
      machines: { big: { node: "4f6c0c8e-9a43-4a1e-9d5e-5b0e4c3b3f21", root_device: { size: 960 }, console: "ttyS0,115200n8" } },
    });
    expect(s.nodes).toHaveLength(3);
  });

  test.each([
    ["no url", EMBEDDED.replace("    url: embedded\n", ""), [`${FILE}:9 inventory.rack.url: is required: embedded, or a site's Ironic API URL`]],
    ["a url that is none", EMBEDDED.replace("url: embedded", "url: ftp://x"), [`${FILE}:11 inventory.rack.url: must be a URL such as https://host:9292`]],
    [
      "embedded: a login, a resource class, a node name, a machine without BMC or MACs",
      EMBEDDED.replace("    url: embedded\n", "    url: embedded\n    credentials: x.yaml\n    resource_class: gold\n")
        .replace('        macs: ["52-54-00-77-00-10"]\n', "        node: u1\n")
        .replace('        bmc: { url: "https://10.0.0.9/redfish/v1/Systems/1", credentials: bmc/b1.yaml, ca_file: bmc/ca.pem }\n', ""),
      [
        `${FILE}:12 inventory.rack.credentials: is not for url: embedded (ooo makes the embedded Ironic's login)`,
        `${FILE}:13 inventory.rack.resource_class: is not for url: embedded: list its machines (ooo enrolls them)`,
        `${FILE}:17 inventory.rack.machines.u1.node: is not for url: embedded (its node is named after the machine)`,
        `${FILE}:15 inventory.rack.machines.u1.macs: is required: the embedded Ironic boots the machine from the provisioning network`,
        `${FILE}:19 inventory.rack.machines.b1.bmc: is required: the embedded Ironic powers the machine through its BMC`,
      ],
    ],
    [
      "a site's Ironic: no login (Keystone is not supported), a machine with a BMC and no node",
      SITE.replace("    credentials: ironic.yaml\n", "").replace("      big: { node: 4f6c0c8e-9a43-4a1e-9d5e-5b0e4c3b3f21, root_device: { size: 960 } }", '      big: { bmc: { address: "10.0.0.1", credentials: b.yaml } }'),
      [
        `${FILE}:9 inventory.cloud.credentials: is required: a file with the Ironic's http_basic username: and password: (Keystone is not supported)`,
        `${FILE}:15 inventory.cloud.machines.big.node: is required: the machine's node in that Ironic (name or UUID)`,
        `${FILE}:15 inventory.cloud.machines.big.bmc: is the site's Ironic's to know (its node's driver_info, ports and properties), not the stack's`,
      ],
    ],
    [
      "a site's Ironic with neither machines nor a resource class",
      SITE.replace("    resource_class: baremetal\n", "").replace(/    machines:\n.*\n/, ""),
      [`${FILE}:9 inventory.cloud.machines: list the machines (Ironic nodes by name or UUID), or give a resource_class to claim them from`],
    ],
    ["more nodes than machines (no resource class)", EMBEDDED.replace("count: 2", "count: 3"), [`${FILE}:12 inventory.rack.machines: the roles want 3 nodes from rack, which has 2 machines`]],
    ["a MAC on two machines", EMBEDDED.replace("[52:54:00:77:00:11]", "[52:54:00:77:00:10]"), [`${FILE}:19 inventory.rack.machines.b1.macs.0: 52:54:00:77:00:10 is machine u1's too`]],
    ["no provisioning network", EMBEDDED.replace(/provisioning:\n(  .*\n){5}/, ""), [`${FILE}:1 provisioning: is required: inventory rack has machines that boot from the provisioning network (address, interface, dhcp, ramdisk)`]],
  ])("refused: %s", (_, text, expected) => {
    expect(problems(text)).toEqual(expected);
  });
});
