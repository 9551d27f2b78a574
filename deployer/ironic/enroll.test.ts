import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureCa } from "../../lib/certs.ts";
import { caFingerprint } from "../../wire/deploy.ts";
import type { StackProvisioning } from "../stack.ts";
import { nodeFields } from "./enroll.ts";
import { IronicMachine } from "./pool.ts";

/** What the embedded Ironic is told of a machine: its hardware type by its BMC, ooo's ramdisk by content, the kernel command line. */
let dir: string;
let login: string;
const provisioning: StackProvisioning = { address: "10.77.0.1", interface: "br0", dhcp: { proxy: true }, ramdisk: "ooo-deploy@1", ports: { metadata: 6385, store: 9292, http: 8080, ironic: 6386 } };
const ramdisk = { name: "ooo-deploy", digest: `sha256:${"d".repeat(64)}`, kernel: { path: "/k", sha256: "a".repeat(64) }, initramfs: { path: "/i", sha256: "b".repeat(64) } };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ooo-ironic-enroll-"));
  login = join(dir, "bmc.yaml");
  writeFileSync(login, "username: admin\npassword: the-bmc-password\n", { mode: 0o600 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("an IPMI machine: hardware type ipmi, cipher suite 3, ooo's ramdisk from the boot files by sha256, its console; UEFI unless it says", () => {
  const m = IronicMachine.parse({ bmc: { address: "127.0.0.11:6230", credentials: login }, macs: ["52:54:00:77:00:10"], console: "ttyS1,57600" });
  const f = nodeFields(m, { provisioning, ramdisk });
  expect(f).toMatchObject({ driver: "ipmi", boot_interface: "ipxe", deploy_interface: "direct", network_interface: "noop", properties: { capabilities: "boot_mode:uefi" } });
  expect(f.driver_info).toEqual({
    ipmi_address: "127.0.0.11",
    ipmi_port: 6230,
    ipmi_username: "admin",
    ipmi_password: "the-bmc-password",
    ipmi_cipher_suite: 3,
    deploy_kernel: `http://10.77.0.1:8080/boot/ramdisk/${"a".repeat(64)}/vmlinuz`,
    deploy_ramdisk: `http://10.77.0.1:8080/boot/ramdisk/${"b".repeat(64)}/initramfs`,
    kernel_append_params: "%default% console=tty0 console=ttyS1,57600",
  });
});

test("a Redfish machine with a CA file, BIOS; the stack's CA pinned on the ramdisk's command line", async () => {
  const ca = await ensureCa(join(dir, "tls"), "ooo test CA");
  const caPem = readFileSync(ca.cert, "utf8");
  const m = IronicMachine.parse({ bmc: { url: "https://10.0.0.9/redfish/v1/Systems/1/", credentials: login, ca_file: "/etc/bmc-ca.pem" }, macs: ["52:54:00:77:00:11"], boot_mode: "bios" });
  const f = nodeFields(m, { provisioning, ramdisk, caPem });
  expect(f).toMatchObject({ driver: "redfish", properties: { capabilities: "boot_mode:bios" } });
  expect(f.driver_info).toMatchObject({ redfish_address: "https://10.0.0.9", redfish_system_id: "/redfish/v1/Systems/1", redfish_username: "admin", redfish_password: "the-bmc-password", redfish_verify_ca: "/etc/bmc-ca.pem" });
  expect(f.driver_info.kernel_append_params).toBe(`%default% console=tty0 console=ttyS0,115200n8 ooo.ca=${caFingerprint(caPem)} ooo.ca_url=http://10.77.0.1:8080/boot/ca.pem`);
});
