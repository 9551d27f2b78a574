import { expect, test } from "bun:test";
import { ProvisioningUnusable } from "../errors.ts";
import { addressInRange, dnsmasqConfig } from "./dnsmasq.ts";

const provisioning = (dhcp: { range: [string, string] } | { proxy: true }) => ({
  address: "10.77.0.1",
  interface: "br0",
  dhcp,
  ramdisk: "ooo-deploy@stable",
  ports: { metadata: 6385, store: 9292, http: 8080, ironic: 6386 },
});
const MACS = ["52:54:00:77:00:10", "52:54:00:77:00:11", "52:54:00:77:00:12"];

test("with a range, every MAC has an address of its own (two machines asking at once were offered one), whatever client-id it sends", () => {
  const conf = dnsmasqConfig({ provisioning: provisioning({ range: ["10.77.0.100", "10.77.0.199"] }), macs: MACS, leaseFile: "/x/leases" });
  expect(conf.split("\n").filter((l) => l.startsWith("dhcp-host="))).toEqual([
    "dhcp-host=52:54:00:77:00:10,id:*,set:ooo,10.77.0.100",
    "dhcp-host=52:54:00:77:00:11,id:*,set:ooo,10.77.0.101",
    "dhcp-host=52:54:00:77:00:12,id:*,set:ooo,10.77.0.102",
  ]);
  expect(conf).toContain("dhcp-ignore=tag:!known");
});

test("in proxy mode the site's DHCP server gives the addresses", () => {
  const conf = dnsmasqConfig({ provisioning: provisioning({ proxy: true }), macs: MACS, network: "10.77.0.0", leaseFile: "/x/leases" });
  expect(conf.split("\n").filter((l) => l.startsWith("dhcp-host="))).toEqual(MACS.map((m) => `dhcp-host=${m},set:ooo`));
});

test("addresses carry across octets; a range smaller than the inventory is refused, naming both", () => {
  expect(addressInRange(["10.0.0.250", "10.0.1.10"], 7, 3)).toBe("10.0.1.1");
  expect(() => addressInRange(["10.77.0.100", "10.77.0.101"], 0, 3)).toThrow(ProvisioningUnusable);
  expect(() => addressInRange(["10.77.0.100", "10.77.0.101"], 0, 3)).toThrow("dhcp.range 10.77.0.100-10.77.0.101 holds 2 addresses; the inventory lists 3 MACs");
});
